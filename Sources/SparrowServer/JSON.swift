import Foundation

/// A parsed JSON value. An array whose elements are all numbers is kept as `[Double]`: tensor
/// data is most of an inference request's bytes, and a tree node per element would cost more
/// than the model run for small models.
enum JSON: Sendable, Equatable {
  case null
  case bool(Bool)
  case number(Double)
  case string(String)
  case numbers([Double])
  /// An array of integers at least one of which is beyond 2^53, where a Double would round
  /// (INT64 tensor data): each element exactly.
  case int64s([Int64])
  case array([JSON])
  case object([String: JSON])

  subscript(key: String) -> JSON? {
    if case .object(let o) = self { return o[key] }
    return nil
  }

  /// The elements of an array (numbers boxed), nil for anything else.
  var elements: [JSON]? {
    switch self {
    case .array(let a): return a
    case .numbers(let a): return a.map { .number($0) }
    case .int64s(let a): return a.map { .number(Double($0)) }
    default: return nil
    }
  }

  /// A name for error messages: what the client sent instead of what was expected.
  var kind: String {
    switch self {
    case .null: return "null"
    case .bool: return "a boolean"
    case .number: return "a number"
    case .string: return "a string"
    case .numbers, .int64s, .array: return "an array"
    case .object: return "an object"
    }
  }
}

/// Malformed JSON: what was wrong and at which byte.
struct JSONError: Error, Equatable, CustomStringConvertible {
  let message: String
  var description: String { message }
}

/// A strict RFC 8259 parser over bytes, with a nesting limit so that hostile input cannot
/// exhaust the stack. Duplicate keys: the last one wins.
struct JSONParser {
  static let maxDepth = 64

  static func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONError) -> JSON {
    var p = JSONParser(bytes: bytes)
    p.skipSpace()
    let v = try p.value(depth: 0)
    p.skipSpace()
    guard p.i == bytes.count else { throw p.error("unexpected data after the JSON value") }
    return v
  }

  static func parse(_ bytes: [UInt8]) throws(JSONError) -> JSON {
    do {
      return try bytes.withUnsafeBytes { (b) throws(JSONError) -> JSON in try parse(b) }
    } catch let e as JSONError { throw e } catch { throw JSONError(message: "\(error)") }
  }

  private let bytes: UnsafeRawBufferPointer
  private var i = 0
  /// The last number's exact value when it was an integer that fits an Int64.
  private var lastExact: Int64?

  private init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

  private func error(_ message: String) -> JSONError {
    JSONError(message: "malformed JSON at byte \(i): \(message)")
  }

  private var peek: UInt8? { i < bytes.count ? bytes[i] : nil }

  private mutating func skipSpace() {
    while i < bytes.count {
      switch bytes[i] {
      case 0x20, 0x09, 0x0A, 0x0D: i += 1
      default: return
      }
    }
  }

  private mutating func expect(_ literal: StaticString, _ v: JSON) throws(JSONError) -> JSON {
    let n = literal.utf8CodeUnitCount
    guard i + n <= bytes.count else { throw error("truncated literal") }
    for k in 0..<n where bytes[i + k] != literal.utf8Start[k] { throw error("invalid literal") }
    i += n
    return v
  }

  private mutating func value(depth: Int) throws(JSONError) -> JSON {
    guard let c = peek else { throw error("unexpected end of input") }
    switch c {
    case UInt8(ascii: "{"): return try object(depth: depth + 1)
    case UInt8(ascii: "["): return try array(depth: depth + 1)
    case UInt8(ascii: "\""): return .string(try string())
    case UInt8(ascii: "t"): return try expect("true", .bool(true))
    case UInt8(ascii: "f"): return try expect("false", .bool(false))
    case UInt8(ascii: "n"): return try expect("null", .null)
    case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
    default: throw error("unexpected character '\(Unicode.Scalar(c))'")
    }
  }

  private mutating func object(depth: Int) throws(JSONError) -> JSON {
    guard depth <= JSONParser.maxDepth else { throw error("nested deeper than \(JSONParser.maxDepth) levels") }
    i += 1
    var out: [String: JSON] = [:]
    skipSpace()
    if peek == UInt8(ascii: "}") {
      i += 1
      return .object(out)
    }
    while true {
      skipSpace()
      guard peek == UInt8(ascii: "\"") else { throw error("expected a string key") }
      let key = try string()
      skipSpace()
      guard peek == UInt8(ascii: ":") else { throw error("expected ':' after a key") }
      i += 1
      skipSpace()
      out[key] = try value(depth: depth)
      skipSpace()
      switch peek {
      case UInt8(ascii: ","): i += 1
      case UInt8(ascii: "}"):
        i += 1
        return .object(out)
      default: throw error("expected ',' or '}' in an object")
      }
    }
  }

  private mutating func array(depth: Int) throws(JSONError) -> JSON {
    guard depth <= JSONParser.maxDepth else { throw error("nested deeper than \(JSONParser.maxDepth) levels") }
    i += 1
    skipSpace()
    if peek == UInt8(ascii: "]") {
      i += 1
      return .numbers([])
    }
    // Numbers stay unboxed until the first element that is not a number; integers stay exact
    // (`ints`) from the first one a Double cannot hold, while every element is an integer.
    var numbers: [Double] = []
    var ints: [Int64]?
    var allIntegers = true
    var values: [JSON]?
    while true {
      skipSpace()
      if values == nil, let c = peek, c == UInt8(ascii: "-") || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) {
        let d = try number()
        if allIntegers, let v = lastExact {
          if ints != nil {
            ints?.append(v)
          } else if v.magnitude > 1 << 53 {
            // The earlier elements are integers within 2^53: their Doubles are exact.
            ints = numbers.map { Int64($0) } + [v]
          }
        } else {
          allIntegers = false
          ints = nil
        }
        numbers.append(d)
      } else {
        let v = try value(depth: depth)
        if values == nil {
          values = numbers.map { .number($0) }
          numbers = []
        }
        values?.append(v)
      }
      skipSpace()
      switch peek {
      case UInt8(ascii: ","): i += 1
      case UInt8(ascii: "]"):
        i += 1
        if let values { return .array(values) }
        if let ints { return .int64s(ints) }
        return .numbers(numbers)
      default: throw error("expected ',' or ']' in an array")
      }
    }
  }

  private mutating func digits() -> Int {
    let start = i
    while let c = peek, c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") { i += 1 }
    return i - start
  }

  private mutating func number() throws(JSONError) -> Double {
    lastExact = nil
    let start = i
    if peek == UInt8(ascii: "-") { i += 1 }
    let intStart = i
    let intDigits = digits()
    guard intDigits > 0 else { throw error("a number needs digits") }
    guard intDigits == 1 || bytes[intStart] != UInt8(ascii: "0") else { throw error("leading zero in a number") }
    var plain = true
    if peek == UInt8(ascii: ".") {
      i += 1
      plain = false
      guard digits() > 0 else { throw error("a fraction needs digits") }
    }
    if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
      i += 1
      plain = false
      if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { i += 1 }
      guard digits() > 0 else { throw error("an exponent needs digits") }
    }
    // Short integers exactly, without strtod.
    if plain && intDigits <= 15 {
      var v = 0
      for k in intStart..<i { v = v * 10 + Int(bytes[k] - UInt8(ascii: "0")) }
      let negative = bytes[start] == UInt8(ascii: "-")
      lastExact = Int64(negative ? -v : v)
      return negative ? -Double(v) : Double(v)
    }
    // Longer integers exactly too when they fit an Int64 (INT64 data beyond 2^53).
    if plain && intDigits <= 19 {
      let negative = bytes[start] == UInt8(ascii: "-")
      var v: Int64 = 0
      var fits = true
      for k in intStart..<i where fits {
        let d = Int64(bytes[k] - UInt8(ascii: "0"))
        let (m, o1) = v.multipliedReportingOverflow(by: 10)
        let (a, o2) = negative ? m.subtractingReportingOverflow(d) : m.addingReportingOverflow(d)
        fits = !o1 && !o2
        v = a
      }
      if fits { lastExact = v }
    }
    let count = i - start
    let d = withUnsafeTemporaryAllocation(of: CChar.self, capacity: count + 1) { buf in
      for k in 0..<count { buf[k] = CChar(bitPattern: bytes[start + k]) }
      buf[count] = 0
      return strtod(buf.baseAddress!, nil)
    }
    // 1e3 or 2.0 is an integer too (exact within 2^53): it does not stop an array staying exact.
    if lastExact == nil, d == d.rounded(), d.magnitude <= 0x1p53 { lastExact = Int64(d) }
    return d
  }

  private mutating func hex4() throws(JSONError) -> UInt32 {
    guard i + 4 <= bytes.count else { throw error("truncated \\u escape") }
    var v: UInt32 = 0
    for _ in 0..<4 {
      let c = bytes[i]
      let d: UInt32
      switch c {
      case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
      case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
      case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
      default: throw error("invalid \\u escape")
      }
      v = v << 4 | d
      i += 1
    }
    return v
  }

  private mutating func string() throws(JSONError) -> String {
    i += 1
    var out: [UInt8] = []
    while true {
      guard let c = peek else { throw error("unterminated string") }
      i += 1
      switch c {
      case UInt8(ascii: "\""):
        return String(decoding: out, as: UTF8.self)
      case UInt8(ascii: "\\"):
        guard let e = peek else { throw error("unterminated escape") }
        i += 1
        switch e {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"):
          var scalar = try hex4()
          if (0xD800..<0xDC00).contains(scalar), i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"),
            bytes[i + 1] == UInt8(ascii: "u")
          {
            i += 2
            let low = try hex4()
            guard (0xDC00..<0xE000).contains(low) else { throw error("invalid surrogate pair") }
            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
          }
          // A lone surrogate is not a scalar: it becomes U+FFFD rather than an error.
          out.append(contentsOf: String(Character(Unicode.Scalar(scalar) ?? "\u{FFFD}")).utf8)
        default: throw error("invalid escape")
        }
      case 0..<0x20: throw error("control character in a string")
      default: out.append(c)
      }
    }
  }
}

/// Writes JSON into a byte array. Non-finite floats are written as `NaN`, `Infinity` and
/// `-Infinity`, as Python's `json` reads and writes them (strict JSON has no spelling for them).
struct JSONWriter {
  var bytes: [UInt8] = []

  mutating func raw(_ s: String) { bytes.append(contentsOf: s.utf8) }

  mutating func string(_ s: String) {
    bytes.append(UInt8(ascii: "\""))
    for c in s.utf8 {
      switch c {
      case UInt8(ascii: "\""): raw("\\\"")
      case UInt8(ascii: "\\"): raw("\\\\")
      case 0x0A: raw("\\n")
      case 0x0D: raw("\\r")
      case 0x09: raw("\\t")
      case 0..<0x20: raw(String(format: "\\u%04x", Int(c)))
      default: bytes.append(c)
      }
    }
    bytes.append(UInt8(ascii: "\""))
  }

  mutating func number<F: BinaryFloatingPoint & CustomStringConvertible>(_ v: F) {
    if v.isFinite {
      raw(v.description)
    } else {
      raw(v.isNaN ? "NaN" : v < 0 ? "-Infinity" : "Infinity")
    }
  }

  /// Writes a value tree (for small documents: metadata, errors, parameters).
  mutating func value(_ v: JSON) {
    switch v {
    case .null: raw("null")
    case .bool(let b): raw(b ? "true" : "false")
    case .number(let d):
      if d == d.rounded(), abs(d) < 1e15 { raw(String(Int64(d))) } else { number(d) }
    case .string(let s): string(s)
    case .numbers(let a): value(.array(a.map { .number($0) }))
    case .int64s(let a): raw("[" + a.map(String.init).joined(separator: ",") + "]")
    case .array(let a):
      bytes.append(UInt8(ascii: "["))
      for (k, e) in a.enumerated() {
        if k > 0 { bytes.append(UInt8(ascii: ",")) }
        value(e)
      }
      bytes.append(UInt8(ascii: "]"))
    case .object(let o):
      bytes.append(UInt8(ascii: "{"))
      for (k, key) in o.keys.sorted().enumerated() {
        if k > 0 { bytes.append(UInt8(ascii: ",")) }
        string(key)
        bytes.append(UInt8(ascii: ":"))
        value(o[key] ?? .null)
      }
      bytes.append(UInt8(ascii: "}"))
    }
  }

  static func encode(_ v: JSON) -> [UInt8] {
    var w = JSONWriter()
    w.value(v)
    return w.bytes
  }
}
