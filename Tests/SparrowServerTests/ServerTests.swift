import Foundation
import Logging
import Sparrow
import Testing

@testable import SparrowServer

let modelsFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Models")
  .standardized

@Suite struct RouteTests {
  typealias Route = InferenceServer.Route

  @Test func routes() {
    #expect(Route(path: "/v2") == .server)
    #expect(Route(path: "/v2/") == .server)
    #expect(Route(path: "/v2/health/live") == .live)
    #expect(Route(path: "/v2/health/ready") == .ready)
    #expect(Route(path: "/metrics") == .metrics)
    #expect(Route(path: "/v2/models/det") == .model(name: "det", version: nil, action: .metadata))
    #expect(Route(path: "/v2/models/det/ready") == .model(name: "det", version: nil, action: .ready))
    #expect(Route(path: "/v2/models/det/infer") == .model(name: "det", version: nil, action: .infer))
    #expect(Route(path: "/v2/models/det/versions/3") == .model(name: "det", version: "3", action: .metadata))
    #expect(Route(path: "/v2/models/det/versions/3/infer") == .model(name: "det", version: "3", action: .infer))
    #expect(Route(path: "/v2/models/a%20b/ready") == .model(name: "a b", version: nil, action: .ready))
    for bad in ["/", "/v3", "/v2/models", "/v2/models/det/infer/x", "/v2/models/det/versions", "/v2/health", "/v2/models/d/bogus"] {
      #expect(Route(path: bad) == .notFound, "\(bad)")
    }
    #expect(Route(path: "/v2/models/d/infer").method == .post)
    #expect(Route(path: "/v2/models/d").method == .get)
  }
}

@Suite struct ConfigTests {
  @Test func parses() throws {
    let c = try ModelConfig.parse(Array(#"""
      {"format": "csr", "threads": 2, "instances": 3, "queue_capacity": 0, "max_batch_size": 0,
       "warmup": [{"x": [1, 3, 32, 32]}]}
      """#.utf8))
    #expect(c.format == .fixed(.csr))
    #expect(c.threads == 2 && c.instances == 3 && c.queueCapacity == 0)
    #expect(c.warmup == [["x": [1, 3, 32, 32]]])
    #expect(try ModelConfig.parse(Array("{}".utf8)) == ModelConfig())
  }

  @Test(arguments: [
    #"{"formt": "csr"}"#, #"{"format": "sparse"}"#, #"{"threads": 0}"#, #"{"instances": 1.5}"#,
    #"{"queue_capacity": -1}"#, #"{"max_batch_size": 8}"#, #"{"gate_budget": 1.5}"#,
    #"{"gate": "half"}"#, #"{"gate": "zero", "gate_budget": 0.5}"#, #"{"warmup": [{"x": [0]}]}"#,
    #"{"warmup": {"x": [1]}}"#, "[]", "{",
  ])
  func refuses(_ text: String) {
    #expect(throws: SetupError.self) { try ModelConfig.parse(Array(text.utf8)) }
  }

  @Test func repositoryTakesTheHighestVersion() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("sparrow-repo-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: root) }
    let fm = FileManager.default
    let relu = modelsFolder.appendingPathComponent("ops/relu.onnx")
    for v in ["1", "3", "10", "x", "02"] {
      try fm.createDirectory(at: root.appendingPathComponent("m/\(v)"), withIntermediateDirectories: true)
      try fm.copyItem(at: relu, to: root.appendingPathComponent("m/\(v)/model.onnx"))
    }
    try fm.createDirectory(at: root.appendingPathComponent("m/11"), withIntermediateDirectories: true)  // no model.onnx
    try Data(#"{"threads": 1}"#.utf8).write(to: root.appendingPathComponent("m/sparrow.json"))
    let found = try ModelRepository.scan(root)
    #expect(found.map(\.name) == ["m"])
    #expect(found[0].version == "10")
    #expect(found[0].config.threads == 1)

    try fm.createDirectory(at: root.appendingPathComponent("empty/1"), withIntermediateDirectories: true)
    #expect(throws: SetupError.self) { try ModelRepository.scan(root) }
    #expect(throws: SetupError.self) { try ModelRepository.scan(root.appendingPathComponent("missing")) }
  }

  @Test func defaultModelFromTheManifest() throws {
    let s = try ModelRepository.defaultModel(modelsFolder: modelsFolder)
    #expect(s.name == "ch_PP-OCRv4_det_infer")
    #expect(FileManager.default.fileExists(atPath: s.file.path))
    #expect(s.config.warmup == [["x": [1, 3, 320, 320]]])
  }
}

@Suite struct ServedModelTests {
  static let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

  func load(_ file: String, config: ModelConfig = ModelConfig()) throws -> ServedModel {
    try ServedModel(
      ModelSource(name: "m", version: "1", file: modelsFolder.appendingPathComponent(file), config: config),
      logger: ServedModelTests.logger)
  }

  /// An input of the model's declared shape and type, values 0, -1, 2, -3, ...
  func request(_ m: ServedModel, binaryOutputs: Bool = false) throws -> InferRequest {
    let inputs = try m.inputs.map { v -> (name: String, tensor: Tensor) in
      let shape = (v.shape ?? []).map { d -> Int in if case .fixed(let n) = d { return n } else { return 1 } }
      let n = try Tensor.elementCount(shape)
      let values = (0..<n).map { Double($0 % 2 == 0 ? $0 : -$0) }
      let storage: Tensor.Storage = v.dtype == .int64 ? .int64(values.map { Int64($0) }) : .float32(values.map { Float($0) })
      return (v.name, try Tensor(shape: shape, storage: storage))
    }
    return InferRequest(id: "a", inputs: inputs, outputs: [], binaryOutputs: binaryOutputs, gate: nil)
  }

  @Test func runsAndMatchesTheLibrary() async throws {
    for file in ["ops/relu.onnx", "ops/cast_int64_to_float.onnx"] {
      let m = try load(file)
      defer { m.pool.shutdown() }
      let r = try request(m)
      let outcome = try await m.infer(r).get()
      let direct = try m.model.run(Dictionary(uniqueKeysWithValues: r.inputs.map { ($0.name, $0.tensor) }))
      #expect(outcome.outputs == direct, "\(file)")

      // JSON and binary encodings carry the same values.
      let (json, noHeader) = m.encode(r, outcome)
      #expect(noHeader == nil)
      let root = try JSONParser.parse(json)
      guard case .numbers(let values)? = root["outputs"]?.elements?.first?["data"] else {
        Issue.record("no data in \(String(decoding: json, as: UTF8.self))")
        continue
      }
      let name = m.outputs[0].name
      #expect(values.map { Float($0) } == direct[name]?.floats)
      #expect(root["id"] == .string("a"))
      #expect(root["parameters"]?["sparrow_compute_ms"] != nil)

      let (body, header) = m.encode(try request(m, binaryOutputs: true), outcome)
      let h = try #require(header)
      let meta = try JSONParser.parse(Array(body[0..<h]))
      #expect(meta["outputs"]?.elements?.first?["parameters"]?["binary_data_size"] == .number(Double(body.count - h)))
      let floats = body[h...].withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
      #expect(floats == direct[name]?.floats)
    }
  }

  @Test func refusesWhatTheModelCannotTake() async throws {
    let m = try load("ops/relu.onnx")
    defer { m.pool.shutdown() }
    let good = try request(m)
    var r = good
    r.inputs[0].name = "nope"
    #expect(await m.infer(r).failureStatus == 400)
    r = good
    r.inputs[0].tensor = try Tensor(shape: good.inputs[0].tensor.shape, storage: .int64(good.inputs[0].tensor.int64s))
    #expect(await m.infer(r).failureStatus == 400)
    r = good
    r.inputs[0].tensor = try good.inputs[0].tensor.reshaped([good.inputs[0].tensor.count])
    #expect(await m.infer(r).failureStatus == 400)
    r = good
    r.outputs = [RequestedOutput(name: "nope", binary: nil)]
    #expect(await m.infer(r).failureStatus == 400)
    r = good
    r.inputs = []
    #expect(await m.infer(r).failureStatus == 400)
    // Still serving.
    #expect(await m.infer(good).failureStatus == nil)
  }

  @Test func fullQueueRefusesAtOnce() async throws {
    // No queue and one worker: of many simultaneous requests, those finding the worker busy get 503.
    var config = ModelConfig()
    config.queueCapacity = 0
    config.format = .fixed(.dense)
    config.warmup = [["x": [1, 3, 320, 320]]]
    let m = try load("ppocr/ch_PP-OCRv4_det_infer.onnx", config: config)
    defer { m.pool.shutdown() }
    let x = try Tensor(shape: [1, 3, 320, 320], floats: [Float](repeating: 0.1, count: 3 * 320 * 320))
    let r = InferRequest(id: nil, inputs: [("x", x)], outputs: [], binaryOutputs: true, gate: nil)
    let statuses = await withTaskGroup(of: Int?.self) { g in
      for _ in 0..<6 { g.addTask { await m.infer(r).failureStatus } }
      return await g.reduce(into: [Int?]()) { $0.append($1) }
    }
    #expect(statuses.contains(nil))
    #expect(statuses.contains(503))
    #expect(statuses.allSatisfy { $0 == nil || $0 == 503 })
  }
}

extension Result where Failure == ServeError {
  var failureStatus: Int? {
    if case .failure(let e) = self { return e.status }
    return nil
  }
}
