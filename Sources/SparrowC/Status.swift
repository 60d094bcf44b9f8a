import Foundation
import Sparrow

// The C ABI's conventions (sparrow_c.h): a status per call, the message in thread-local storage,
// buffers handed out with malloc and freed by the caller with sparrow_free.

/// sparrow_status.
enum Status: Int32 {
  case ok = 0
  case invalidArgument = 1
  case invalidModel = 2
  case runtimeError = 3
  case ioError = 4
}

/// An error on its way to C: the status and Sparrow's message.
struct ABIError: Error {
  var status: Status
  var message: String
  init(_ status: Status, _ message: String) {
    self.status = status
    self.message = message
  }
}

/// This thread's last message (malloc'd), freed when replaced or when the thread ends.
private let errorKey: pthread_key_t = {
  var key = pthread_key_t()
  pthread_key_create(&key) { free($0) }
  return key
}()

private func setLastError(_ message: String?) {
  let old = pthread_getspecific(errorKey)
  pthread_setspecific(errorKey, message.map { UnsafeMutableRawPointer(strdup($0)) } ?? nil)
  free(old)
}

/// The one choke point between Swift errors and C statuses: runs `body`, records the message of
/// whatever it throws and returns the status.
func guarded(_ body: () throws -> Void) -> Int32 {
  do {
    try body()
    return Status.ok.rawValue
  } catch let e as ABIError {
    setLastError(e.message)
    return e.status.rawValue
  } catch let e as ModelError {
    setLastError(e.message)
    return Status.invalidModel.rawValue
  } catch let e as RuntimeError {
    setLastError(e.message)
    return Status.runtimeError.rawValue
  } catch {
    setLastError("\(error)")
    return Status.runtimeError.rawValue
  }
}

/// A C string the caller owns (sparrow_free).
func cString(_ s: String) -> UnsafeMutablePointer<CChar> { strdup(s) }

/// The string at `p`, or an invalid-argument error naming `what`.
func string(_ p: UnsafePointer<CChar>?, _ what: String) throws -> String {
  guard let p else { throw ABIError(.invalidArgument, "\(what) is NULL") }
  return String(cString: p)
}

/// A JSON value, decoded strictly (true is not 1).
enum JSONValue: Decodable {
  case bool(Bool)
  case int(Int)
  case double(Double)
  case string(String)
  case array([JSONValue])
  case object([String: JSONValue])
  case null

  init(from decoder: any Decoder) throws {
    let c = try decoder.singleValueContainer()
    if c.decodeNil() {
      self = .null
    } else if let b = try? c.decode(Bool.self) {
      self = .bool(b)
    } else if let i = try? c.decode(Int.self) {
      self = .int(i)
    } else if let d = try? c.decode(Double.self) {
      self = .double(d)
    } else if let s = try? c.decode(String.self) {
      self = .string(s)
    } else if let a = try? c.decode([JSONValue].self) {
      self = .array(a)
    } else {
      self = .object(try c.decode([String: JSONValue].self))
    }
  }
}

/// A JSON options object (NULL or "" is empty), its keys checked against `allowed`; null values
/// are as if not given.
struct Options {
  let values: [String: JSONValue]

  init(_ p: UnsafePointer<CChar>?, allowed: Set<String>) throws {
    guard let p, p.pointee != 0 else {
      values = [:]
      return
    }
    let text = String(cString: p)
    guard case .object(let dict)? = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) else {
      throw ABIError(.invalidArgument, "options are not a JSON object: \(text)")
    }
    for k in dict.keys where !allowed.contains(k) {
      throw ABIError(.invalidArgument, "unknown option '\(k)' (known: \(allowed.sorted().joined(separator: ", ")))")
    }
    values = dict.filter { if case .null = $0.value { return false } else { return true } }
  }

  func string(_ key: String) throws -> String? {
    guard let v = values[key] else { return nil }
    guard case .string(let s) = v else { throw ABIError(.invalidArgument, "option '\(key)' must be a string") }
    return s
  }

  func int(_ key: String) throws -> Int? {
    guard let v = values[key] else { return nil }
    guard case .int(let i) = v else { throw ABIError(.invalidArgument, "option '\(key)' must be an integer") }
    return i
  }

  func double(_ key: String) throws -> Double? {
    switch values[key] {
    case nil: return nil
    case .int(let i)?: return Double(i)
    case .double(let d)?: return d
    default: throw ABIError(.invalidArgument, "option '\(key)' must be a number")
    }
  }

  func bool(_ key: String) throws -> Bool? {
    guard let v = values[key] else { return nil }
    guard case .bool(let b) = v else { throw ABIError(.invalidArgument, "option '\(key)' must be true or false") }
    return b
  }

  /// ["a", "b"]: a list of strings.
  func strings(_ key: String) throws -> [String] {
    guard let v = values[key] else { return [] }
    guard case .array(let a) = v else { throw ABIError(.invalidArgument, "option '\(key)' must be a list of strings") }
    return try a.map { x in
      guard case .string(let s) = x else {
        throw ABIError(.invalidArgument, "option '\(key)' must be a list of strings")
      }
      return s
    }
  }

  /// {"name": [dims]}: positive integers.
  func shapes(_ key: String) throws -> [String: [Int]] {
    guard let v = values[key] else { return [:] }
    guard case .object(let d) = v else { throw ABIError(.invalidArgument, "option '\(key)' must map names to shapes") }
    var out: [String: [Int]] = [:]
    for (name, dims) in d {
      guard case .array(let a) = dims, !a.isEmpty else {
        throw ABIError(.invalidArgument, "shape of '\(name)' must be a list of integers")
      }
      out[name] = try a.map { x in
        guard case .int(let i) = x, i > 0 else {
          throw ABIError(.invalidArgument, "shape of '\(name)': dimensions must be positive integers")
        }
        return i
      }
    }
    return out
  }

  /// Plan options from "threads", "format", "conv", "linear", "gate_layers", "max_tensor_mib".
  func planOptions() throws -> PlanOptions {
    let threads = try int("threads")
    if let t = threads, t < 1 { throw ABIError(.invalidArgument, "threads must be at least 1") }
    var policy = FormatPolicy.auto
    if let f = try string("format"), f != "auto" {
      guard let kind = WeightFormat.Kind(rawValue: f) else {
        throw ABIError(.invalidArgument, "format '\(f)': expected auto, dense, csr, nm, bsr or channel")
      }
      policy = .fixed(kind)
    }
    var o = PlanOptions(threads: threads, format: policy)
    if let c = try string("conv") {
      guard let a = ConvAlgorithm(rawValue: c) else {
        throw ABIError(.invalidArgument, "conv '\(c)': expected measure, im2col, direct or pixel")
      }
      o.convAlgorithm = a
    }
    if let l = try string("linear") {
      guard let a = LinearAlgorithm(rawValue: l) else {
        throw ABIError(.invalidArgument, "linear '\(l)': expected measure, kernels or panel")
      }
      o.linearAlgorithm = a
    }
    if let g = try string("gate_layers") { o.gateLayers = GateLayers(parsing: g) }
    let mib = try int("max_tensor_mib") ?? 2048
    guard (1...(1 << 30)).contains(mib) else { throw ABIError(.invalidArgument, "max_tensor_mib must be positive") }
    o.maxTensorBytes = mib << 20
    return o
  }
}

/// The graph at `path`, or in `nbytes` bytes at `bytes`.
func loadGraph(_ path: UnsafePointer<CChar>?, _ bytes: UnsafeRawPointer?, _ nbytes: Int) throws -> Graph {
  if let path {
    let p = String(cString: path)
    guard FileManager.default.fileExists(atPath: p) else { throw ABIError(.ioError, "no such model file: \(p)") }
    return try ONNXImporter.load(contentsOf: URL(fileURLWithPath: p))
  }
  guard let bytes, nbytes > 0 else { throw ABIError(.invalidArgument, "neither a path nor model bytes given") }
  return try ONNXImporter.decode(Data(bytes: bytes, count: nbytes))
}

nonisolated(unsafe) private let version = strdup("0.1.0")!
nonisolated(unsafe) private let coreOverride: UnsafeMutablePointer<CChar>? = BLAS.coreTypeOverride.map { strdup($0) }

@_cdecl("sparrow_version")
public func sparrowVersion() -> UnsafePointer<CChar> { UnsafePointer(version) }

@_cdecl("sparrow_error_message")
public func sparrowErrorMessage() -> UnsafePointer<CChar>? {
  pthread_getspecific(errorKey).map { UnsafePointer($0.assumingMemoryBound(to: CChar.self)) }
}

@_cdecl("sparrow_free")
public func sparrowFree(_ p: UnsafeMutableRawPointer?) { free(p) }

@_cdecl("sparrow_blas_core_override")
public func sparrowBlasCoreOverride() -> UnsafePointer<CChar>? { coreOverride.map { UnsafePointer($0) } }
