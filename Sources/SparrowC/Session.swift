import Foundation
import Sparrow

let maxRank = 32

/// One sparrow_tensor (sparrow_c.h) in C memory, read and written at its fields' offsets:
/// name 0, dtype 8, rank 12, shape 16 (SPARROW_MAX_RANK int64s), data 272, nbytes 280; 288 bytes.
struct CTensor {
  static let size = 288
  let p: UnsafeMutableRawPointer

  init(_ base: UnsafeRawPointer, _ i: Int) { p = UnsafeMutableRawPointer(mutating: base) + i * CTensor.size }

  var name: UnsafePointer<CChar>? { p.load(as: UnsafePointer<CChar>?.self) }
  var dtype: Int32 { p.load(fromByteOffset: 8, as: Int32.self) }
  var rank: Int32 { p.load(fromByteOffset: 12, as: Int32.self) }
  func shape(_ rank: Int) -> [Int] { (0..<rank).map { Int(p.load(fromByteOffset: 16 + 8 * $0, as: Int64.self)) } }
  var data: UnsafeMutableRawPointer? { p.load(fromByteOffset: 272, as: UnsafeMutableRawPointer?.self) }
  var nbytes: UInt64 { p.load(fromByteOffset: 280, as: UInt64.self) }

  /// Fills an output: no name, the type and shape, the data and its size.
  func set(dtype: Int32, shape: [Int], data: UnsafeMutableRawPointer?, nbytes: Int) {
    p.storeBytes(of: nil, as: UnsafePointer<CChar>?.self)
    p.storeBytes(of: dtype, toByteOffset: 8, as: Int32.self)
    p.storeBytes(of: Int32(shape.count), toByteOffset: 12, as: Int32.self)
    for k in 0..<maxRank {
      p.storeBytes(of: Int64(k < shape.count ? shape[k] : 0), toByteOffset: 16 + 8 * k, as: Int64.self)
    }
    p.storeBytes(of: data, toByteOffset: 272, as: UnsafeMutableRawPointer?.self)
    p.storeBytes(of: UInt64(nbytes), toByteOffset: 280, as: UInt64.self)
  }

  func clearData() { p.storeBytes(of: nil, toByteOffset: 272, as: UnsafeMutableRawPointer?.self) }
}

/// ONNX's TensorProto codes for Sparrow's element types.
extension DType {
  var code: Int32 {
    switch self {
    case .float32: return 1
    case .uint8: return 2
    case .int8: return 3
    case .int32: return 6
    case .int64: return 7
    case .bool: return 9
    case .float64: return 11
    }
  }

  init?(code: Int32) {
    guard let d = DType.allCases.first(where: { $0.code == code }) else { return nil }
    self = d
  }
}

/// What a sparrow_session handle points to: the model, its options, and one Sparrow session per
/// plan (per input shape), used under `lock`: one run at a time.
final class SessionHandle: @unchecked Sendable {
  let model: Model
  let gate: GateMode
  private let lock = NSLock()
  private var sessions: [Session] = []

  init(model: Model, gate: GateMode) {
    self.model = model
    self.gate = gate
  }

  func locked<T>(_ body: () throws -> T) rethrows -> T {
    lock.lock()
    defer { lock.unlock() }
    return try body()
  }

  /// The session for `plan`, made on first use; as many kept as the model keeps plans.
  func session(for plan: Plan) -> Session {
    if let s = sessions.first(where: { $0.plan === plan }) { return s }
    let s = Session(plan: plan)
    s.gate = gate
    sessions.append(s)
    if sessions.count > model.maxPlans { sessions.removeFirst() }
    return s
  }
}

private let sessionKeys: Set<String> = [
  "threads", "format", "gate", "optimize", "conv", "linear", "gate_layers", "max_tensor_mib",
]

@_cdecl("sparrow_session_create")
public func sparrowSessionCreate(
  _ path: UnsafePointer<CChar>?, _ bytes: UnsafeRawPointer?, _ nbytes: Int, _ options: UnsafePointer<CChar>?,
  _ out: UnsafeMutablePointer<OpaquePointer?>?
) -> Int32 {
  guarded {
    guard let out else { throw ABIError(.invalidArgument, "out is NULL") }
    out.pointee = nil
    let o = try Options(options, allowed: sessionKeys)
    let plan = try o.planOptions()
    let gateText = try o.string("gate") ?? "off"
    let gate: GateMode
    do { gate = try GateMode(parsing: gateText) } catch { throw ABIError(.invalidArgument, "gate: \(error)") }
    let graph = try loadGraph(path, bytes, nbytes)
    let model = try Model(graph: graph, optimize: try o.bool("optimize") ?? true, options: plan)
    let unsupported = Set(model.graph.nodes.filter { !Planner.supports($0) }.map(\.opType))
    if !unsupported.isEmpty {
      throw ABIError(
        .invalidModel, "the model has ops Sparrow does not support: \(unsupported.sorted().joined(separator: ", "))")
    }
    out.pointee = OpaquePointer(Unmanaged.passRetained(SessionHandle(model: model, gate: gate)).toOpaque())
  }
}

@_cdecl("sparrow_session_free")
public func sparrowSessionFree(_ session: OpaquePointer?) {
  guard let session else { return }
  Unmanaged<SessionHandle>.fromOpaque(UnsafeRawPointer(session)).release()
}

private func handle(_ p: OpaquePointer?) throws -> SessionHandle {
  guard let p else { throw ABIError(.invalidArgument, "session is NULL") }
  return Unmanaged<SessionHandle>.fromOpaque(UnsafeRawPointer(p)).takeUnretainedValue()
}

@_cdecl("sparrow_session_io")
public func sparrowSessionIo(_ session: OpaquePointer?, _ json: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?)
  -> Int32
{
  guarded {
    guard let json else { throw ABIError(.invalidArgument, "json is NULL") }
    let h = try handle(session)
    func describe(_ v: ValueInfo) -> [String: Any] {
      let shape: Any =
        v.shape.map { dims in
          dims.map { d -> Any in
            switch d {
            case .fixed(let n): return n
            case .symbolic(let s): return s.isEmpty ? NSNull() : s
            }
          }
        } ?? NSNull()
      return ["name": v.name, "dtype": v.dtype?.rawValue ?? NSNull(), "shape": shape]
    }
    let g = h.model.graph
    let inputs = g.inputs.filter { !h.model.graph.constants.keys.contains($0.name) }
    let obj: [String: Any] = ["inputs": inputs.map(describe), "outputs": g.outputs.map(describe)]
    let data = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
    json.pointee = cString(String(decoding: data, as: UTF8.self))
  }
}

@_cdecl("sparrow_session_run")
public func sparrowSessionRun(
  _ session: OpaquePointer?, _ inputs: UnsafeRawPointer?, _ nInputs: Int,
  _ outputNames: UnsafePointer<UnsafePointer<CChar>?>?, _ nOutputs: Int, _ outputs: UnsafeMutableRawPointer?
) -> Int32 {
  guarded {
    let h = try handle(session)
    guard nInputs == 0 || inputs != nil else { throw ABIError(.invalidArgument, "inputs is NULL") }
    guard nOutputs == 0 || (outputNames != nil && outputs != nil) else {
      throw ABIError(.invalidArgument, "output_names or outputs is NULL")
    }
    var raw: [String: RawTensor] = [:]
    for i in 0..<nInputs {
      let t = CTensor(inputs!, i)
      guard let np = t.name else { throw ABIError(.invalidArgument, "input \(i) has no name") }
      let name = String(cString: np)
      guard let dtype = DType(code: t.dtype) else {
        throw ABIError(
          .invalidArgument,
          "input '\(name)': element type \(t.dtype) is not one Sparrow runs (float32, float64, int64, int32, int8, uint8, bool)"
        )
      }
      guard (0...maxRank).contains(Int(t.rank)) else {
        throw ABIError(.invalidArgument, "input '\(name)': rank \(t.rank) outside 0...\(maxRank)")
      }
      let shape = t.shape(Int(t.rank))
      guard shape.allSatisfy({ $0 >= 0 }) else {
        throw ABIError(.invalidArgument, "input '\(name)': negative dimension in \(shape)")
      }
      guard t.nbytes <= UInt64(Int.max), t.nbytes == 0 || t.data != nil else {
        throw ABIError(.invalidArgument, "input '\(name)': no data")
      }
      guard raw[name] == nil else { throw ABIError(.invalidArgument, "input '\(name)' given twice") }
      raw[name] = RawTensor(
        dtype: dtype, shape: shape, bytes: UnsafeRawBufferPointer(start: t.data, count: Int(t.nbytes)))
    }
    var names: [String] = []
    for i in 0..<nOutputs {
      guard let p = outputNames![i] else { throw ABIError(.invalidArgument, "output name \(i) is NULL") }
      names.append(String(cString: p))
    }
    for n in names where !h.model.graph.outputs.contains(where: { $0.name == n }) {
      throw ABIError(
        .invalidArgument,
        "the model has no output '\(n)' (outputs: \(h.model.graph.outputs.map(\.name).joined(separator: ", ")))")
    }
    for (name, t) in raw {
      guard let declared = h.model.graph.inputs.first(where: { $0.name == name }) else {
        throw ABIError(
          .invalidArgument,
          "the model has no input '\(name)' (inputs: \(h.model.graph.inputs.map(\.name).joined(separator: ", ")))")
      }
      if let d = declared.dtype, d != t.dtype {
        throw ABIError(.invalidArgument, "input '\(name)' is \(t.dtype), the model expects \(d)")
      }
      if let dims = declared.shape {
        let fits =
          dims.count == t.shape.count
          && zip(dims, t.shape).allSatisfy { if case .fixed(let n) = $0 { n == $1 } else { true } }
        guard fits else {
          throw ABIError(
            .invalidArgument,
            "input '\(name)' has shape \(t.shape), the model declares [\(dims.map(\.description).joined(separator: ", "))]"
          )
        }
      }
    }
    for v in h.model.graph.inputs where raw[v.name] == nil {
      throw ABIError(.invalidArgument, "input '\(v.name)' is missing")
    }
    var made: [UnsafeMutableRawPointer] = []
    do {
      try h.locked {
        let shapeInputs = h.model.shapeInputs.names
        var values: [String: Tensor] = [:]
        for name in shapeInputs {
          guard let t = raw[name] else { continue }
          do { values[name] = try Tensor(shape: t.shape, dtype: t.dtype, bytes: t.bytes) } catch {
            throw ABIError(.invalidArgument, "input '\(name)': \(error)")
          }
        }
        let plan = try h.model.plan(shapes: raw.mapValues(\.shape), values: values)
        let s = h.session(for: plan)
        try s.run(raw: raw, outputs: names) {
          (i: Int, type: TensorType, bytes: UnsafeRawBufferPointer) throws(RuntimeError) in
          guard type.shape.count <= maxRank else {
            throw RuntimeError("output '\(names[i])' has rank \(type.shape.count) > \(maxRank)")
          }
          var data: UnsafeMutableRawPointer?
          if bytes.count > 0 {
            guard posix_memalign(&data, 64, bytes.count) == 0, let data else {
              throw RuntimeError("cannot allocate \(bytes.count) bytes for output '\(names[i])'")
            }
            data.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            made.append(data)
          }
          CTensor(outputs!, i).set(dtype: type.dtype.code, shape: type.shape, data: data, nbytes: bytes.count)
        }
      }
    } catch {
      for p in made { free(p) }
      for i in 0..<nOutputs { CTensor(outputs!, i).clearData() }
      throw error
    }
  }
}
