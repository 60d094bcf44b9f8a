import Foundation
import GRPCCore
import GRPCInProcessTransport
import Sparrow
import Testing

@testable import SparrowServer

/// A ModelInferRequest input.
func grpcInput(
  _ name: String, _ type: String, _ shape: [Int64], _ fill: (inout Inference_InferTensorContents) -> Void = { _ in }
)
  -> Inference_ModelInferRequest.InferInputTensor
{
  var i = Inference_ModelInferRequest.InferInputTensor()
  i.name = name
  i.datatype = type
  i.shape = shape
  fill(&i.contents)
  return i
}

@Suite struct GRPCMappingTests {
  let limits = RequestLimits(maxBodyBytes: 1 << 20, maxElements: 1000)

  func status(_ m: Inference_ModelInferRequest) -> Int? {
    do {
      _ = try InferRequest(grpc: m, limits: limits)
      return nil
    } catch { return error.status }
  }

  @Test func typedContents() throws {
    var m = Inference_ModelInferRequest()
    m.id = "r1"
    m.inputs = [
      grpcInput("x", "FP32", [2, 2]) { $0.fp32Contents = [1, 2, 3.5, -4] },
      grpcInput("i", "INT64", [2]) { $0.int64Contents = [.min, .max] },
      grpcInput("s", "INT8", [2]) { $0.intContents = [-128, 127] },
      grpcInput("u", "UINT8", [1]) { $0.uintContents = [255] },
      grpcInput("b", "BOOL", [2]) { $0.boolContents = [true, false] },
      grpcInput("e", "FP32", [0, 3]),
    ]
    var out = Inference_ModelInferRequest.InferRequestedOutputTensor()
    out.name = "y"
    m.outputs = [out]
    let r = try InferRequest(grpc: m, limits: limits)
    #expect(r.id == "r1")
    #expect(r.inputs.map(\.name) == ["x", "i", "s", "u", "b", "e"])
    #expect(r.inputs[0].tensor == (try Tensor(shape: [2, 2], floats: [1, 2, 3.5, -4])))
    #expect(r.inputs[1].tensor.storage == .int64([.min, .max]))
    #expect(r.inputs[2].tensor.storage == .int8([-128, 127]))
    #expect(r.inputs[3].tensor.storage == .uint8([255]))
    #expect(r.inputs[4].tensor.storage == .bool([true, false]))
    #expect(r.inputs[5].tensor.shape == [0, 3])
    #expect(r.outputs == [RequestedOutput(name: "y", binary: true)])
    #expect(r.gate == nil)
  }

  @Test func rawContents() throws {
    var m = Inference_ModelInferRequest()
    m.inputs = [grpcInput("x", "FP32", [3]), grpcInput("b", "BOOL", [2])]
    let floats: [Float] = [1.5, -2, 1e-30]
    m.rawInputContents = [floats.withUnsafeBytes { Data($0) }, Data([1, 0])]
    let r = try InferRequest(grpc: m, limits: limits)
    #expect(r.inputs[0].tensor.storage == .float32(floats))
    #expect(r.inputs[1].tensor.storage == .bool([true, false]))
  }

  @Test func gateParameters() throws {
    var m = Inference_ModelInferRequest()
    m.inputs = [grpcInput("x", "FP32", [1]) { $0.fp32Contents = [1] }]
    var p = Inference_InferParameter()
    p.doubleParam = 0.5
    m.parameters["gate_budget"] = p
    #expect(try InferRequest(grpc: m, limits: limits).gate == .topk(0.5))
    p.stringParam = "half"
    m.parameters["gate_budget"] = p
    #expect(status(m) == 400)
    m.parameters = [:]
    p.stringParam = "zero"
    m.parameters["gate"] = p
    #expect(try InferRequest(grpc: m, limits: limits).gate == .zero)
    p.stringParam = "bogus"
    m.parameters["gate"] = p
    #expect(status(m) == 400)
  }

  /// Every malformed request is the client's fault (400), a limit 413: never a trap or a 500.
  @Test func refusals() {
    func request(_ inputs: [Inference_ModelInferRequest.InferInputTensor], raw: [Data] = [])
      -> Inference_ModelInferRequest
    {
      var m = Inference_ModelInferRequest()
      m.inputs = inputs
      m.rawInputContents = raw
      return m
    }
    let cases: [(String, Inference_ModelInferRequest, Int)] = [
      ("no inputs", request([]), 400),
      ("unnamed", request([grpcInput("", "FP32", [1]) { $0.fp32Contents = [1] }]), 400),
      (
        "twice",
        request([
          grpcInput("x", "FP32", [1]) { $0.fp32Contents = [1] }, grpcInput("x", "FP32", [1]) { $0.fp32Contents = [1] },
        ]), 400
      ),
      ("unknown type", request([grpcInput("x", "FP33", [1]) { $0.fp32Contents = [1] }]), 400),
      ("unsupported type", request([grpcInput("x", "FP16", [1]) { $0.fp32Contents = [1] }]), 400),
      ("negative dim", request([grpcInput("x", "FP32", [-1]) { $0.fp32Contents = [1] }]), 400),
      ("huge dims", request([grpcInput("x", "FP32", [1 << 40, 1 << 40])]), 400),
      ("rank 17", request([grpcInput("x", "FP32", Array(repeating: 1, count: 17)) { $0.fp32Contents = [1] }]), 400),
      ("over max elements", request([grpcInput("x", "FP32", [1001])]), 413),
      ("too few", request([grpcInput("x", "FP32", [2]) { $0.fp32Contents = [1] }]), 400),
      ("wrong list", request([grpcInput("x", "FP32", [1]) { $0.intContents = [1] }]), 400),
      (
        "two lists",
        request([
          grpcInput("x", "INT32", [1]) {
            $0.intContents = [1]
            $0.fp32Contents = [1]
          }
        ]), 400
      ),
      ("INT8 range", request([grpcInput("x", "INT8", [1]) { $0.intContents = [128] }]), 400),
      ("UINT8 range", request([grpcInput("x", "UINT8", [1]) { $0.uintContents = [256] }]), 400),
      ("raw count", request([grpcInput("x", "FP32", [1]), grpcInput("y", "FP32", [1])], raw: [Data(count: 4)]), 400),
      ("raw size", request([grpcInput("x", "FP32", [2])], raw: [Data(count: 7)]), 400),
      (
        "raw and contents", request([grpcInput("x", "FP32", [1]) { $0.fp32Contents = [1] }], raw: [Data(count: 4)]), 400
      ),
    ]
    for (label, m, want) in cases {
      #expect(status(m) == want, "\(label)")
    }
    var dup = request([grpcInput("x", "FP32", [1]) { $0.fp32Contents = [1] }])
    var out = Inference_ModelInferRequest.InferRequestedOutputTensor()
    out.name = "y"
    dup.outputs = [out, out]
    #expect(status(dup) == 400)
    out.parameters["classification"] = Inference_InferParameter()
    dup.outputs = [out]
    #expect(status(dup) == 400)
  }

  @Test func statusCodes() {
    #expect(ServeError(400, "").rpcCode == .invalidArgument)
    #expect(ServeError(415, "").rpcCode == .invalidArgument)
    #expect(ServeError(404, "").rpcCode == .notFound)
    #expect(ServeError(413, "").rpcCode == .resourceExhausted)
    #expect(ServeError(503, "").rpcCode == .unavailable)
    #expect(ServeError(500, "").rpcCode == .internalError)
    #expect(InferenceService.statusName(.invalidArgument) == "INVALID_ARGUMENT")
    #expect(RPCError(code: .resourceExhausted, message: "").httpStatus == 413)
  }

  @Test func addresses() throws {
    #expect(try InferenceServer.grpcAddress(host: "127.0.0.1", port: 1).ipv4?.host == "127.0.0.1")
    #expect(try InferenceServer.grpcAddress(host: "localhost", port: 1).ipv4?.host == "127.0.0.1")
    #expect(try InferenceServer.grpcAddress(host: "::", port: 1).ipv6 != nil)
    #expect(throws: SetupError.self) { try InferenceServer.grpcAddress(host: "example.invalid", port: 1) }
  }
}

/// The service through gRPC's own router and serialization (in-process transport).
@Suite struct GRPCServiceTests {
  func withService(
    _ body:
      @Sendable (Inference_GRPCInferenceService.Client<InProcessTransport.Client>, ServedModel) async throws -> Void
  ) async throws {
    let m = try ServedModel(
      ModelSource(
        name: "relu", version: "1", file: modelsFolder.appendingPathComponent("ops/relu.onnx"), config: ModelConfig()),
      logger: ServedModelTests.logger)
    defer { m.pool.shutdown() }
    let server = InferenceServer(
      models: [m], unavailable: [UnavailableModel(name: "bad", version: "1", reason: "model.onnx is truncated")],
      options: ServeOptions(limits: RequestLimits(maxElements: 1 << 16)), logger: ServedModelTests.logger)
    let transport = InProcessTransport()
    try await withGRPCServer(transport: transport.server, services: [InferenceService(server: server)]) { _ in
      try await withGRPCClient(transport: transport.client) { client in
        try await body(Inference_GRPCInferenceService.Client(wrapping: client), m)
      }
    }
  }

  func code(_ call: () async throws -> Void) async -> RPCError.Code? {
    do {
      try await call()
      return nil
    } catch let e as RPCError { return e.code } catch { return .unknown }
  }

  @Test func healthMetadataAndInference() async throws {
    try await withService { client, m in
      #expect(try await client.serverLive(Inference_ServerLiveRequest()).live)
      // Strict readiness (the default): the unavailable model makes the server not ready.
      #expect(try await client.serverReady(Inference_ServerReadyRequest()).ready == false)
      var ready = Inference_ModelReadyRequest()
      ready.name = "relu"
      #expect(try await client.modelReady(ready).ready)
      ready.name = "bad"
      #expect(try await client.modelReady(ready).ready == false)
      ready.name = "nope"
      #expect(try await client.modelReady(ready).ready == false)

      var md = Inference_ModelMetadataRequest()
      md.name = "relu"
      let meta = try await client.modelMetadata(md)
      #expect(meta.inputs.map(\.name) == m.inputs.map(\.name))
      #expect(meta.inputs.first?.datatype == "FP32")
      md.name = "bad"
      #expect(await code { _ = try await client.modelMetadata(md) } == .unavailable)
      md.name = "nope"
      #expect(await code { _ = try await client.modelMetadata(md) } == .notFound)
      md.name = "relu"
      md.version = "2"
      #expect(await code { _ = try await client.modelMetadata(md) } == .notFound)

      let index = try await client.repositoryIndex(Inference_RepositoryIndexRequest())
      #expect(index.models.map(\.name) == ["bad", "relu"])
      #expect(index.models.map(\.state) == ["UNAVAILABLE", "READY"])

      var configRequest = Inference_ModelConfigRequest()
      configRequest.name = "relu"
      let config = try await client.modelConfig(configRequest).config
      #expect(config.name == "relu" && config.input.first?.dataType == .typeFp32)

      // Inference equals the library's run on the same input, raw and typed contents alike.
      let v = m.inputs[0]
      let shape = (v.shape ?? []).map { d -> Int in if case .fixed(let n) = d { return n } else { return 2 } }
      let n = try Tensor.elementCount(shape)
      let x = (0..<n).map { Float($0 % 3) - 1 }
      let want = try m.model.run([v.name: try Tensor(shape: shape, floats: x)])[m.outputs[0].name]
      var infer = Inference_ModelInferRequest()
      infer.modelName = "relu"
      infer.id = "q"
      infer.inputs = [grpcInput(v.name, "FP32", shape.map { Int64($0) }) { $0.fp32Contents = x }]
      for raw in [false, true] {
        if raw {
          infer.inputs[0].contents = Inference_InferTensorContents()
          infer.rawInputContents = [x.withUnsafeBytes { Data($0) }]
        }
        let r = try await client.modelInfer(infer)
        #expect(r.id == "q" && r.modelName == "relu" && r.modelVersion == "1")
        #expect(r.outputs.map(\.name) == [m.outputs[0].name])
        #expect(r.outputs.first?.shape == want?.shape.map { Int64($0) })
        let got = r.rawOutputContents.first.map { d in d.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) } }
        #expect(got == want?.floats)
        #expect(r.parameters["sparrow_compute_ms"]?.doubleParam != nil)
      }

      // Faults: the wrong datatype or shape, an unknown model or version, a model not ready.
      var bad = infer
      bad.inputs[0].datatype = "INT64"
      #expect(await code { _ = try await client.modelInfer(bad) } == .invalidArgument)
      bad = infer
      bad.inputs[0].shape = [Int64(n), 1, 1, 1, 1]
      #expect(await code { _ = try await client.modelInfer(bad) } == .invalidArgument)
      bad = infer
      bad.modelName = "nope"
      #expect(await code { _ = try await client.modelInfer(bad) } == .notFound)
      bad.modelName = "bad"
      #expect(await code { _ = try await client.modelInfer(bad) } == .unavailable)
      bad = infer
      bad.modelVersion = "7"
      #expect(await code { _ = try await client.modelInfer(bad) } == .notFound)
      bad = infer
      bad.inputs[0].shape = [1 << 20]
      bad.rawInputContents = []
      #expect(await code { _ = try await client.modelInfer(bad) } == .resourceExhausted)
    }
  }
}
