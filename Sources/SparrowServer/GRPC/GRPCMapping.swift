import Foundation
import GRPCCore
import Sparrow

// The gRPC messages to and from the request path REST uses: a ModelInferRequest becomes the same
// `InferRequest` a JSON body does (validated against the same limits), runs through
// `ServedModel.infer`, and its outcome becomes a ModelInferResponse with raw output contents.

extension InferRequest {
  /// Reads a ModelInferRequest: inputs from `raw_input_contents` (one entry per input, in order,
  /// as the binary tensor extension's bytes) or from each input's typed `contents`.
  init(grpc m: Inference_ModelInferRequest, limits: RequestLimits) throws(ServeError) {
    self.init(id: m.id.isEmpty ? nil : m.id, inputs: [], outputs: [], binaryOutputs: true, gate: nil)
    switch m.parameters["gate_budget"]?.parameterChoice {
    case nil: break
    case .doubleParam(let b)?:
      guard b > 0, b <= 1 else { throw .bad("parameter 'gate_budget' must be in (0, 1], got \(b)") }
      gate = .topk(b)
    case .int64Param(1)?, .uint64Param(1)?: gate = .topk(1)
    case let v?: throw .bad("parameter 'gate_budget' must be a double_param in (0, 1], got \(InferRequest.describe(v))")
    }
    switch m.parameters["gate"]?.parameterChoice {
    case nil: break
    case .stringParam(let s)?:
      guard gate == nil else { throw .bad("give 'gate' or 'gate_budget', not both") }
      do { gate = try GateMode(parsing: s) } catch { throw .bad("parameter 'gate': \(error.message)") }
    case let v?: throw .bad("parameter 'gate' must be a string_param, got \(InferRequest.describe(v))")
    }
    guard !m.inputs.isEmpty else { throw .bad("'inputs' is missing or empty") }
    let raw = m.rawInputContents
    guard raw.isEmpty || raw.count == m.inputs.count else {
      throw .bad(
        "raw_input_contents has \(raw.count) entries for \(m.inputs.count) inputs: give one per input, in order, or none"
      )
    }
    var seen = Set<String>()
    for (k, input) in m.inputs.enumerated() {
      let name = input.name
      guard !name.isEmpty else { throw .bad("inputs[\(k)] needs a name") }
      guard seen.insert(name).inserted else { throw .bad("input '\(name)' is given twice") }
      let type: WireType
      do { type = try WireType(parsing: input.datatype) } catch { throw .bad("input '\(name)': \(error.message)") }
      guard input.shape.count <= 16 else {
        throw .bad("input '\(name)': rank \(input.shape.count) is over the limit of 16")
      }
      guard input.shape.allSatisfy({ $0 >= 0 && $0 < 1 << 50 }) else {
        throw .bad("input '\(name)': shape \(input.shape) must hold non-negative integers")
      }
      let shape = input.shape.map { Int($0) }
      let count: Int
      do { count = try Tensor.elementCount(shape) } catch { throw .bad("input '\(name)': \(error.message)") }
      guard count <= limits.maxElements else {
        throw ServeError(413, "input '\(name)' has \(count) elements, over the limit of \(limits.maxElements)")
      }
      let storage: Tensor.Storage
      if raw.isEmpty {
        storage = try InferRequest.decode(contents: input.contents, type: type, count: count, name: name)
      } else {
        guard InferRequest.isEmpty(input.contents) else {
          throw .bad("input '\(name)': give its elements in raw_input_contents or in contents, not both")
        }
        let decoded = raw[k].withUnsafeBytes { bytes in
          Result { () throws(ServeError) -> Tensor.Storage in
            try TensorCoding.decode(
              binary: bytes, type: type, count: count, name: name, field: "raw_input_contents[\(k)]")
          }
        }
        storage = try decoded.get()
      }
      do { inputs.append((name, try Tensor(shape: shape, storage: storage))) } catch {
        throw .bad("input '\(name)': \(error.message)")
      }
    }
    var wanted = Set<String>()
    for o in m.outputs {
      guard !o.name.isEmpty else { throw .bad("each requested output needs a name") }
      if o.parameters["classification"] != nil {
        throw .bad("output '\(o.name)': the classification extension is not supported")
      }
      guard wanted.insert(o.name).inserted else { throw .bad("output '\(o.name)' is requested twice") }
      outputs.append(RequestedOutput(name: o.name, binary: true))
    }
  }

  static func describe(_ p: Inference_InferParameter.OneOf_ParameterChoice) -> String {
    switch p {
    case .boolParam(let v): return "bool_param \(v)"
    case .int64Param(let v): return "int64_param \(v)"
    case .stringParam(let v): return "string_param '\(v)'"
    case .doubleParam(let v): return "double_param \(v)"
    case .uint64Param(let v): return "uint64_param \(v)"
    }
  }

  static func isEmpty(_ c: Inference_InferTensorContents) -> Bool {
    c.boolContents.isEmpty && c.intContents.isEmpty && c.int64Contents.isEmpty && c.uintContents.isEmpty
      && c.uint64Contents.isEmpty && c.fp32Contents.isEmpty && c.fp64Contents.isEmpty && c.bytesContents.isEmpty
  }

  /// Elements from the typed lists: each datatype has its one list (INT8 and INT32 share
  /// `int_contents`; UINT8 is in `uint_contents`), and the other lists must be empty.
  static func decode(contents c: Inference_InferTensorContents, type: WireType, count: Int, name: String)
    throws(ServeError) -> Tensor.Storage
  {
    let field: String
    let found: Int
    switch type {
    case .FP32: (field, found) = ("fp32_contents", c.fp32Contents.count)
    case .FP64: (field, found) = ("fp64_contents", c.fp64Contents.count)
    case .INT64: (field, found) = ("int64_contents", c.int64Contents.count)
    case .INT32, .INT8: (field, found) = ("int_contents", c.intContents.count)
    case .UINT8: (field, found) = ("uint_contents", c.uintContents.count)
    case .BOOL: (field, found) = ("bool_contents", c.boolContents.count)
    }
    let lists: [(String, Int)] = [
      ("bool_contents", c.boolContents.count), ("int_contents", c.intContents.count),
      ("int64_contents", c.int64Contents.count), ("uint_contents", c.uintContents.count),
      ("uint64_contents", c.uint64Contents.count), ("fp32_contents", c.fp32Contents.count),
      ("fp64_contents", c.fp64Contents.count), ("bytes_contents", c.bytesContents.count),
    ]
    if let other = lists.first(where: { $0.0 != field && $0.1 > 0 }) {
      throw .bad("input '\(name)' is \(type.rawValue): its elements go in contents.\(field), not \(other.0)")
    }
    guard found == count else {
      throw .bad("input '\(name)': contents.\(field) holds \(found) elements, the shape needs \(count)")
    }
    func narrow<T: FixedWidthInteger, S: BinaryInteger>(_ a: [S], _: T.Type) throws(ServeError) -> [T] {
      var out: [T] = []
      out.reserveCapacity(a.count)
      for v in a {
        guard let x = T(exactly: v) else { throw .bad("input '\(name)': \(v) is not a \(type.rawValue) value") }
        out.append(x)
      }
      return out
    }
    switch type {
    case .FP32: return .float32(c.fp32Contents)
    case .FP64: return .float64(c.fp64Contents)
    case .INT64: return .int64(c.int64Contents)
    case .INT32: return .int32(c.intContents)
    case .INT8: return .int8(try narrow(c.intContents, Int8.self))
    case .UINT8: return .uint8(try narrow(c.uintContents, UInt8.self))
    case .BOOL: return .bool(c.boolContents)
    }
  }
}

extension ServedModel {
  /// The response: every output as `raw_output_contents` (as Triton answers), Sparrow's figures
  /// in `parameters`. Outputs are measured against `limit` before any is copied.
  func grpcResponse(_ r: InferRequest, _ o: InferOutcome, limit: Int) throws(ServeError) -> Inference_ModelInferResponse
  {
    let wanted = r.outputs.isEmpty ? outputs.map(\.name) : r.outputs.map(\.name)
    // A protobuf message cannot exceed 2 GiB whatever the limit says.
    let most = min(limit, Int(Int32.max) - (1 << 20))
    let need = wanted.reduce(0) { n, w in n + (o.outputs[w].map { $0.count * $0.dtype.size } ?? 0) }
    guard need <= most else {
      throw ServeError(
        413,
        "the response would take \(need) bytes, over the limit of \(most) bytes: ask for fewer outputs or smaller inputs"
      )
    }
    var m = Inference_ModelInferResponse()
    m.modelName = name
    m.modelVersion = version
    m.id = r.id ?? ""
    func double(_ v: Double) -> Inference_InferParameter {
      var p = Inference_InferParameter()
      p.doubleParam = v
      return p
    }
    func int(_ v: Int) -> Inference_InferParameter {
      var p = Inference_InferParameter()
      p.int64Param = Int64(v)
      return p
    }
    func string(_ v: String) -> Inference_InferParameter {
      var p = Inference_InferParameter()
      p.stringParam = v
      return p
    }
    m.parameters = [
      "sparrow_queue_ms": double(o.queueMs), "sparrow_plan_ms": double(o.planMs),
      "sparrow_compute_ms": double(o.computeMs), "sparrow_formats": string(o.formats),
      "sparrow_threads": int(o.threads), "sparrow_gate": string(o.gate.description),
      "sparrow_gate_skip_fraction": double(o.gateSkipFraction), "sparrow_batch_rows": int(o.batchRows),
      "sparrow_batch_requests": int(o.batchRequests),
    ]
    for w in wanted {
      guard let t = o.outputs[w] else { continue }
      var out = Inference_ModelInferResponse.InferOutputTensor()
      out.name = w
      out.datatype = WireType(t.dtype).rawValue
      out.shape = t.shape.map { Int64($0) }
      m.outputs.append(out)
      m.rawOutputContents.append(t.withUnsafeBytes { Data($0) })
    }
    return m
  }

  /// ModelMetadata: as `GET /v2/models/{name}`.
  var grpcMetadata: Inference_ModelMetadataResponse {
    func tensors(_ vs: [ValueInfo]) -> [Inference_ModelMetadataResponse.TensorMetadata] {
      vs.map { v in
        var t = Inference_ModelMetadataResponse.TensorMetadata()
        t.name = v.name
        t.datatype = WireType(v.dtype ?? .float32).rawValue
        t.shape = (v.shape ?? []).map { d in
          if case .fixed(let n) = d { return Int64(n) }
          return -1
        }
        return t
      }
    }
    var m = Inference_ModelMetadataResponse()
    m.name = name
    m.versions = [version]
    m.platform = "sparrow_onnx"
    m.inputs = tensors(inputs)
    m.outputs = tensors(outputs)
    return m
  }

  /// ModelConfig: as `GET /v2/models/{name}/config` (Triton's configuration, the fields Sparrow fills).
  var grpcConfig: Inference_ModelConfig {
    let batched = config.maxBatchSize > 0
    func dims(_ v: ValueInfo) -> [Int64] {
      var d = (v.shape ?? []).map { d -> Int64 in
        if case .fixed(let n) = d { return Int64(n) }
        return -1
      }
      if batched, !d.isEmpty { d.removeFirst() }
      return d
    }
    var c = Inference_ModelConfig()
    c.name = name
    c.platform = "sparrow_onnx"
    c.backend = "sparrow"
    c.maxBatchSize = Int32(config.maxBatchSize)
    c.input = inputs.map { v in
      var i = Inference_ModelInput()
      i.name = v.name
      i.dataType = WireType(v.dtype ?? .float32).configType
      i.dims = dims(v)
      return i
    }
    c.output = outputs.map { v in
      var o = Inference_ModelOutput()
      o.name = v.name
      o.dataType = WireType(v.dtype ?? .float32).configType
      o.dims = dims(v)
      return o
    }
    var group = Inference_ModelInstanceGroup()
    group.count = Int32(config.instances)
    group.kind = .cpu
    c.instanceGroup = [group]
    if batched {
      var b = Inference_ModelDynamicBatching()
      b.maxQueueDelayMicroseconds = UInt64(config.maxQueueDelayMicroseconds)
      c.dynamicBatching = b
    }
    return c
  }
}

extension WireType {
  /// Triton's model-configuration data type.
  var configType: Inference_DataType {
    switch self {
    case .BOOL: return .typeBool
    case .UINT8: return .typeUint8
    case .INT8: return .typeInt8
    case .INT32: return .typeInt32
    case .INT64: return .typeInt64
    case .FP32: return .typeFp32
    case .FP64: return .typeFp64
    }
  }
}

extension ServeError {
  /// The gRPC status for the HTTP status REST answers with, as Triton maps its errors: a client
  /// fault is INVALID_ARGUMENT, an unknown model NOT_FOUND, a limit RESOURCE_EXHAUSTED, a full
  /// queue or a server shutting down UNAVAILABLE, our own bug INTERNAL.
  var rpcCode: RPCError.Code {
    switch status {
    case 404: return .notFound
    case 405, 501: return .unimplemented
    case 413: return .resourceExhausted
    case 503: return .unavailable
    case 400..<500: return .invalidArgument
    default: return .internalError
    }
  }

  var rpcError: RPCError { RPCError(code: rpcCode, message: message) }
}
