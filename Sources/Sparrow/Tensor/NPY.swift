import Foundation

/// NumPy `.npy` files (format versions 1.0, 2.0 and 3.0), read with every header field
/// checked: the data must be exactly as long as the header's shape says.
public enum NPY {
  static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // "\x93NUMPY"

  /// Refuses files whose declared element count exceeds this (default 1 Gi elements).
  public static let defaultMaxElements = 1 << 30

  public static func read(contentsOf url: URL, maxElements: Int = defaultMaxElements) throws -> Tensor {
    let data: Data
    do { data = try Data(contentsOf: url) } catch {
      throw TensorError("\(url.path): cannot read: \(error.localizedDescription)")
    }
    do { return try decode(data, maxElements: maxElements) } catch {
      throw TensorError("\(url.path): \(error.message)")
    }
  }

  public static func decode(_ data: Data, maxElements: Int = defaultMaxElements) throws(TensorError) -> Tensor {
    let bytes = [UInt8](data)
    guard bytes.count >= 10, Array(bytes[0..<6]) == magic else { throw TensorError("not a .npy file (bad magic)") }
    let major = bytes[6]
    let headerLen: Int, headerStart: Int
    switch major {
    case 1:
      headerLen = Int(bytes[8]) | Int(bytes[9]) << 8
      headerStart = 10
    case 2, 3:
      guard bytes.count >= 12 else { throw TensorError("truncated .npy header") }
      headerLen = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
      headerStart = 12
    default:
      throw TensorError("unsupported .npy version \(major)")
    }
    guard headerLen <= 65536, headerStart + headerLen <= bytes.count else {
      throw TensorError("truncated or oversized .npy header")
    }
    guard let header = String(bytes: bytes[headerStart..<(headerStart + headerLen)], encoding: .utf8) else {
      throw TensorError("the .npy header is not text")
    }
    let descr = try field(header, "descr")
    let fortran = try field(header, "fortran_order")
    let shapeText = try field(header, "shape")
    guard fortran == "False" else { throw TensorError("Fortran-order arrays are not supported") }
    let shape = try parseShape(shapeText)
    let count = try Tensor.elementCount(shape)
    guard count <= maxElements else {
      throw TensorError("shape \(shape) has \(count) elements, over the limit of \(maxElements)")
    }
    let dtype: DType
    switch descr {
    case "<f4": dtype = .float32
    case "<f8": dtype = .float64
    case "<i8": dtype = .int64
    case "<i4": dtype = .int32
    case "|i1", "<i1": dtype = .int8
    case "|u1", "<u1": dtype = .uint8
    case "|b1": dtype = .bool
    default: throw TensorError("unsupported dtype '\(descr)' (little-endian f4/f8/i8/i4/i1/u1/b1 only)")
    }
    let start = headerStart + headerLen
    let expected = count * dtype.size
    guard bytes.count - start == expected else {
      throw TensorError("data is \(bytes.count - start) bytes but shape \(shape) of \(descr) needs \(expected)")
    }
    let body = bytes[start...]
    if dtype == .bool, !body.allSatisfy({ $0 <= 1 }) { throw TensorError("bool array holds bytes other than 0 and 1") }
    return try body.withUnsafeBytes { raw in
      Result { () throws(TensorError) -> Tensor in try Tensor(shape: shape, dtype: dtype, bytes: raw) }
    }.get()
  }

  /// The text after `'key':` up to the next top-level comma or closing brace.
  static func field(_ header: String, _ key: String) throws(TensorError) -> String {
    guard let r = header.range(of: "'\(key)':") else { throw TensorError(".npy header has no '\(key)'") }
    // NumPy reads a repeated key's last value: refuse the header rather than read another one.
    guard header.range(of: "'\(key)':", range: r.upperBound..<header.endIndex) == nil else {
      throw TensorError(".npy header gives '\(key)' twice")
    }
    var depth = 0
    var out = ""
    for ch in header[r.upperBound...] {
      if ch == "(" { depth += 1 }
      if ch == ")" { depth -= 1 }
      if depth == 0 && (ch == "," || ch == "}") { break }
      out.append(ch)
      if depth < 0 { break }
    }
    return out.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "'\""))
  }

  static func parseShape(_ text: String) throws(TensorError) -> [Int] {
    guard text.hasPrefix("("), text.hasSuffix(")") else { throw TensorError("bad shape '\(text)'") }
    let inner = text.dropFirst().dropLast()
    var dims: [Int] = []
    for part in inner.split(separator: ",") {
      let t = part.trimmingCharacters(in: .whitespaces)
      if t.isEmpty { continue }
      guard let d = Int(t.hasSuffix("L") ? String(t.dropLast()) : t), d >= 0 else {
        throw TensorError("bad dimension '\(t)' in shape \(text)")
      }
      dims.append(d)
    }
    return dims
  }

  /// Encodes a tensor as a version 1.0 `.npy` file.
  public static func encode(_ t: Tensor) -> Data {
    let descr: String
    switch t.dtype {
    case .float32: descr = "<f4"
    case .float64: descr = "<f8"
    case .int64: descr = "<i8"
    case .int32: descr = "<i4"
    case .int8: descr = "|i1"
    case .uint8: descr = "|u1"
    case .bool: descr = "|b1"
    }
    let shape = t.shape.count == 1 ? "(\(t.shape[0]),)" : "(" + t.shape.map(String.init).joined(separator: ", ") + ")"
    var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shape), }"
    // Pad so that the data starts on a 64-byte boundary, ending the header with a newline.
    let total = 10 + header.utf8.count + 1
    header += String(repeating: " ", count: (64 - total % 64) % 64) + "\n"
    var out = Data(magic)
    out.append(contentsOf: [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)])
    out.append(contentsOf: Array(header.utf8))
    t.withUnsafeBytes { out.append(contentsOf: $0) }
    return out
  }

  public static func write(_ t: Tensor, to url: URL) throws {
    try encode(t).write(to: url)
  }
}
