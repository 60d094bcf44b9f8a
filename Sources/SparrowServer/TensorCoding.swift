import Foundation
import Sparrow

/// Tensors to and from the protocol's two encodings: JSON `data` arrays (flat or nested,
/// row-major) and the binary tensor data extension (raw little-endian elements, booleans one
/// byte each).
enum TensorCoding {
  // MARK: decoding

  static func decode(json data: JSON, type: WireType, count: Int, name: String) throws(ServeError) -> Tensor.Storage {
    // INT64 elements are collected as Int64s: a Double would round those beyond 2^53.
    var flat = Flattener(limit: count, name: name, exact: type == .INT64)
    try flat.add(data, depth: 0)
    guard flat.count == count else {
      throw .bad("input '\(name)': 'data' holds \(flat.count) elements, the shape needs \(count)")
    }
    func ints<T: FixedWidthInteger>(_: T.Type) throws(ServeError) -> [T] {
      var out: [T] = []
      out.reserveCapacity(count)
      for d in flat.numbers {
        guard let v = T(exactly: d) else {
          throw .bad("input '\(name)': \(d) is not a \(type.rawValue) value")
        }
        out.append(v)
      }
      return out
    }
    switch type {
    case .FP32: return .float32(flat.numbers.map { Float($0) })
    case .FP64: return .float64(flat.numbers)
    case .INT64: return .int64(flat.ints)
    case .INT32: return .int32(try ints(Int32.self))
    case .INT8: return .int8(try ints(Int8.self))
    case .UINT8: return .uint8(try ints(UInt8.self))
    case .BOOL:
      var out: [Bool] = []
      out.reserveCapacity(count)
      for d in flat.numbers {
        guard d == 0 || d == 1 else { throw .bad("input '\(name)': \(d) is not a BOOL value") }
        out.append(d == 1)
      }
      return .bool(out)
    }
  }

  /// Nested arrays to one row-major list; booleans count as 0 and 1. With `exact`, elements
  /// are kept as Int64s (and must be integers), else as Doubles.
  private struct Flattener {
    let limit: Int
    let name: String
    let exact: Bool
    var numbers: [Double] = []
    var ints: [Int64] = []
    var count: Int { exact ? ints.count : numbers.count }

    /// An element the parser kept as a Double. Beyond 2^53 it may have been rounded (the parser
    /// keeps plain integers that fit an Int64 exact, so this one did not fit or was not plain).
    func int(_ d: Double) throws(ServeError) -> Int64 {
      guard let v = Int64(exactly: d) else { throw .bad("input '\(name)': \(d) is not an INT64 value") }
      guard v.magnitude <= 1 << 53 else {
        throw .bad("input '\(name)': \(d) is not an INT64 value (beyond 2^53 write plain integers in -2^63...2^63-1)")
      }
      return v
    }

    mutating func add(_ v: JSON, depth: Int) throws(ServeError) {
      guard count <= limit else {
        throw .bad("input '\(name)': 'data' holds more elements than the shape's \(limit)")
      }
      switch v {
      case .numbers(let a):
        if exact {
          for d in a { ints.append(try int(d)) }
        } else {
          numbers.append(contentsOf: a)
        }
      case .int64s(let a):
        if exact { ints.append(contentsOf: a) } else { numbers.append(contentsOf: a.map { Double($0) }) }
      case .number(let d) where depth > 0:
        if exact { ints.append(try int(d)) } else { numbers.append(d) }
      case .bool(let b) where depth > 0:
        if exact { ints.append(b ? 1 : 0) } else { numbers.append(b ? 1 : 0) }
      case .array(let a):
        for e in a { try add(e, depth: depth + 1) }
      default:
        throw .bad("input '\(name)': 'data' must be an array of numbers (or booleans), found \(v.kind)")
      }
    }
  }

  /// Raw little-endian elements; `field` names where the bytes came from, for the error.
  static func decode(
    binary bytes: UnsafeRawBufferPointer, type: WireType, count: Int, name: String, field: String = "binary_data_size"
  ) throws(ServeError) -> Tensor.Storage {
    let want = count * type.dtype.size
    guard bytes.count == want else {
      throw .bad("input '\(name)': \(field) is \(bytes.count) bytes, \(count) \(type.rawValue) elements need \(want)")
    }
    do { return try Tensor(shape: [count], dtype: type.dtype, bytes: bytes).storage } catch {
      throw .bad("input '\(name)': \(error.message)")
    }
  }

  // MARK: encoding

  /// Appends the tensor's elements as raw bytes.
  static func appendBinary(_ t: Tensor, to out: inout [UInt8]) {
    t.withUnsafeBytes { out.append(contentsOf: $0) }
  }

  /// Most bytes one element takes in a JSON array, its comma included.
  static func maxJSONBytes(_ d: DType) -> Int {
    switch d {
    case .float32: return 16  // "-1.1754944e-38,"
    case .float64: return 25  // "-2.2250738585072014e-308,"
    case .int64: return 21
    case .int32: return 12
    case .int8, .uint8: return 5
    case .bool: return 6
    }
  }

  /// Writes the tensor's elements as a flat JSON array.
  static func writeJSON(_ t: Tensor, to w: inout JSONWriter) {
    w.bytes.append(UInt8(ascii: "["))
    func each<T>(_ a: [T], _ f: (inout JSONWriter, T) -> Void) {
      for (k, v) in a.enumerated() {
        if k > 0 { w.bytes.append(UInt8(ascii: ",")) }
        f(&w, v)
      }
    }
    switch t.storage {
    case .float32(let a): each(a) { $0.number($1) }
    case .float64(let a): each(a) { $0.number($1) }
    case .int64(let a): each(a) { $0.raw(String($1)) }
    case .int32(let a): each(a) { $0.raw(String($1)) }
    case .int8(let a): each(a) { $0.raw(String($1)) }
    case .uint8(let a): each(a) { $0.raw(String($1)) }
    case .bool(let a): each(a) { $0.raw($1 ? "true" : "false") }
    }
    w.bytes.append(UInt8(ascii: "]"))
  }
}
