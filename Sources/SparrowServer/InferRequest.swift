import Foundation
import Sparrow

/// An error answered to the client: an HTTP status and a message (sent as `{"error": "..."}`).
public struct ServeError: Error, Equatable, CustomStringConvertible, Sendable {
  public let status: Int
  public let message: String
  /// The connection cannot carry another request (its body was not read to the end).
  public var closeConnection = false
  public init(_ status: Int, _ message: String, closeConnection: Bool = false) {
    self.status = status
    self.message = message
    self.closeConnection = closeConnection
  }
  static func bad(_ message: String) -> ServeError { ServeError(400, message) }
  public var description: String { "\(status): \(message)" }
}

/// Limits on what one request may carry.
public struct RequestLimits: Sendable {
  /// Largest request body, header and binary data together.
  public var maxBodyBytes: Int
  /// Most elements in one input tensor.
  public var maxElements: Int
  /// Largest response body: outputs are measured before they are encoded.
  public var maxResponseBytes: Int
  /// A body over this many bytes (or of unknown length, chunked) is "large": at most
  /// `maxLargeBodies` of them are read, parsed and run at once; more get 503 at once.
  public var largeBodyBytes: Int
  public var maxLargeBodies: Int
  public init(
    maxBodyBytes: Int = 64 << 20, maxElements: Int = 16 << 20, maxResponseBytes: Int = 256 << 20,
    largeBodyBytes: Int = 4 << 20, maxLargeBodies: Int = 2
  ) {
    self.maxBodyBytes = maxBodyBytes
    self.maxElements = maxElements
    self.maxResponseBytes = maxResponseBytes
    self.largeBodyBytes = largeBodyBytes
    self.maxLargeBodies = maxLargeBodies
  }
}

/// Open Inference Protocol tensor datatypes Sparrow's tensors can hold.
enum WireType: String, CaseIterable {
  case BOOL, UINT8, INT8, INT32, INT64, FP32, FP64

  /// Protocol datatypes that exist but Sparrow has no tensor type for.
  static let unsupported: Set<String> = ["UINT16", "UINT32", "UINT64", "INT16", "FP16", "BF16", "BYTES"]

  init(parsing s: String) throws(ServeError) {
    if let t = WireType(rawValue: s) {
      self = t
    } else if WireType.unsupported.contains(s) {
      throw .bad("datatype \(s) is not supported by Sparrow (supported: \(WireType.allCases.map(\.rawValue).joined(separator: ", ")))")
    } else {
      throw .bad("unknown datatype '\(s)'")
    }
  }

  init(_ d: DType) {
    switch d {
    case .bool: self = .BOOL
    case .uint8: self = .UINT8
    case .int8: self = .INT8
    case .int32: self = .INT32
    case .int64: self = .INT64
    case .float32: self = .FP32
    case .float64: self = .FP64
    }
  }

  var dtype: DType {
    switch self {
    case .BOOL: return .bool
    case .UINT8: return .uint8
    case .INT8: return .int8
    case .INT32: return .int32
    case .INT64: return .int64
    case .FP32: return .float32
    case .FP64: return .float64
    }
  }
}

/// An output the client asked for, and whether it wants it as binary data.
struct RequestedOutput: Equatable {
  var name: String
  var binary: Bool?
}

/// A parsed `POST .../infer` body: validated against the protocol and the limits, not yet
/// against a model.
struct InferRequest {
  var id: String?
  var inputs: [(name: String, tensor: Tensor)]
  /// Empty: every model output.
  var outputs: [RequestedOutput]
  /// Request parameter `binary_data_output`: the default for outputs not listed.
  var binaryOutputs: Bool
  /// Request parameters `gate` ("off", "zero", "topk:R", "model") or `gate_budget` (R, the
  /// kept fraction: `topk:R`): the runtime-pruning gate for this request; nil for the model's.
  var gate: GateMode?

  /// Parses a request. `headerLength` is the `Inference-Header-Content-Length` header: the
  /// JSON is the body's first `headerLength` bytes and binary tensor data follows it.
  static func parse(body: UnsafeRawBufferPointer, headerLength: Int?, limits: RequestLimits) throws(ServeError)
    -> InferRequest
  {
    guard body.count <= limits.maxBodyBytes else {
      throw ServeError(413, "request body of \(body.count) bytes is over the limit of \(limits.maxBodyBytes)")
    }
    let jsonCount = headerLength ?? body.count
    guard jsonCount >= 0, jsonCount <= body.count else {
      throw .bad("Inference-Header-Content-Length \(jsonCount) is outside the body's \(body.count) bytes")
    }
    let root: JSON
    do { root = try JSONParser.parse(UnsafeRawBufferPointer(rebasing: body[0..<jsonCount])) } catch {
      throw .bad(error.message)
    }
    guard case .object = root else { throw .bad("the request must be a JSON object, got \(root.kind)") }
    var binary = BinaryCursor(body: body, offset: jsonCount)

    var request = InferRequest(id: nil, inputs: [], outputs: [], binaryOutputs: false, gate: nil)
    switch root["id"] {
    case nil, .null?: break
    case .string(let s)?: request.id = s
    case let v?: throw .bad("'id' must be a string, got \(v.kind)")
    }
    let params = try parameters(root["parameters"], "request")
    request.binaryOutputs = try flag(params["binary_data_output"], "binary_data_output") ?? false
    switch params["gate_budget"] {
    case nil, .null?: break
    case .number(let b)?:
      guard b > 0, b <= 1 else { throw .bad("parameter 'gate_budget' must be in (0, 1], got \(b)") }
      request.gate = .topk(b)
    case let v?: throw .bad("parameter 'gate_budget' must be a number, got \(v.kind)")
    }
    switch params["gate"] {
    case nil, .null?: break
    case .string(let s)?:
      guard request.gate == nil else { throw .bad("give 'gate' or 'gate_budget', not both") }
      do { request.gate = try GateMode(parsing: s) } catch { throw .bad("parameter 'gate': \(error.message)") }
    case let v?: throw .bad("parameter 'gate' must be a string, got \(v.kind)")
    }

    guard let inputs = root["inputs"].flatMap(\.elements) else {
      throw .bad("'inputs' must be an array of tensors, got \(root["inputs"]?.kind ?? "nothing")")
    }
    guard !inputs.isEmpty else { throw .bad("'inputs' is missing or empty") }
    var seen = Set<String>()
    for (k, input) in inputs.enumerated() {
      let (name, tensor) = try parseInput(input, index: k, binary: &binary, limits: limits)
      guard seen.insert(name).inserted else { throw .bad("input '\(name)' is given twice") }
      request.inputs.append((name, tensor))
    }
    guard binary.offset == body.count else {
      throw .bad("\(body.count - binary.offset) bytes of binary data follow the inputs that no binary_data_size claims")
    }

    switch root["outputs"] {
    case nil, .null?: break
    case let v?:
      guard let outs = v.elements else { throw .bad("'outputs' must be an array, got \(v.kind)") }
      var seen = Set<String>()
      for o in outs {
        guard case .object = o, case .string(let name)? = o["name"] else {
          throw .bad("each requested output must be an object with a string 'name'")
        }
        let p = try parameters(o["parameters"], "output '\(name)'")
        if p["classification"] != nil { throw .bad("output '\(name)': the classification extension is not supported") }
        guard seen.insert(name).inserted else { throw .bad("output '\(name)' is requested twice") }
        request.outputs.append(RequestedOutput(name: name, binary: try flag(p["binary_data"], "binary_data")))
      }
    }
    return request
  }

  private static func parameters(_ v: JSON?, _ owner: String) throws(ServeError) -> [String: JSON] {
    switch v {
    case nil, .null?: return [:]
    case .object(let o)?: return o
    case let v?: throw .bad("\(owner) 'parameters' must be an object, got \(v.kind)")
    }
  }

  private static func flag(_ v: JSON?, _ name: String) throws(ServeError) -> Bool? {
    switch v {
    case nil, .null?: return nil
    case .bool(let b)?: return b
    case let v?: throw .bad("parameter '\(name)' must be a boolean, got \(v.kind)")
    }
  }

  private static func parseInput(_ input: JSON, index: Int, binary: inout BinaryCursor, limits: RequestLimits)
    throws(ServeError) -> (String, Tensor)
  {
    guard case .object = input else { throw .bad("inputs[\(index)] must be an object, got \(input.kind)") }
    guard case .string(let name)? = input["name"] else { throw .bad("inputs[\(index)] needs a string 'name'") }
    guard case .string(let typeName)? = input["datatype"] else {
      throw .bad("input '\(name)' needs a string 'datatype'")
    }
    let type: WireType
    do { type = try WireType(parsing: typeName) } catch { throw .bad("input '\(name)': \(error.message)") }
    guard case .numbers(let dims)? = input["shape"] else {
      throw .bad("input '\(name)' needs 'shape', an array of non-negative integers")
    }
    guard dims.count <= 16 else { throw .bad("input '\(name)': rank \(dims.count) is over the limit of 16") }
    var shape: [Int] = []
    for d in dims {
      guard d >= 0, d == d.rounded(), d < 1e15 else {
        throw .bad("input '\(name)': shape \(dims) must hold non-negative integers")
      }
      shape.append(Int(d))
    }
    let count: Int
    do { count = try Tensor.elementCount(shape) } catch { throw .bad("input '\(name)': \(error.message)") }
    guard count <= limits.maxElements else {
      throw ServeError(413, "input '\(name)' has \(count) elements, over the limit of \(limits.maxElements)")
    }
    let params = try parameters(input["parameters"], "input '\(name)'")
    let storage: Tensor.Storage
    switch params["binary_data_size"] {
    case nil, .null?:
      guard let data = input["data"] else { throw .bad("input '\(name)' has neither 'data' nor binary_data_size") }
      storage = try TensorCoding.decode(json: data, type: type, count: count, name: name)
    case .number(let size)?:
      guard input["data"] == nil else { throw .bad("input '\(name)' has both 'data' and binary_data_size") }
      guard size >= 0, size == size.rounded(), size < 1e15 else {
        throw .bad("input '\(name)': binary_data_size must be a non-negative integer")
      }
      let bytes = try binary.take(Int(size), for: name)
      storage = try TensorCoding.decode(binary: bytes, type: type, count: count, name: name)
    case let v?: throw .bad("input '\(name)': binary_data_size must be a number, got \(v.kind)")
    }
    do { return (name, try Tensor(shape: shape, storage: storage)) } catch {
      throw .bad("input '\(name)': \(error.message)")
    }
  }
}

/// Reads binary tensor data, input after input, from behind the JSON header.
struct BinaryCursor {
  let body: UnsafeRawBufferPointer
  private(set) var offset: Int

  init(body: UnsafeRawBufferPointer, offset: Int) {
    self.body = body
    self.offset = offset
  }

  mutating func take(_ n: Int, for name: String) throws(ServeError) -> UnsafeRawBufferPointer {
    guard n <= body.count - offset else {
      throw .bad("input '\(name)' claims \(n) bytes of binary data, only \(body.count - offset) remain")
    }
    defer { offset += n }
    return UnsafeRawBufferPointer(rebasing: body[offset..<offset + n])
  }
}
