/// Element types Sparrow's tensors hold. Computation is fp32; integer and boolean tensors carry
/// shapes, indices and masks.
public enum DType: String, Sendable, Hashable, CaseIterable {
  case float32, float64, int64, int32, int8, uint8, bool

  /// Bytes per element.
  public var size: Int {
    switch self {
    case .float64, .int64: return 8
    case .float32, .int32: return 4
    case .int8, .uint8, .bool: return 1
    }
  }
}

/// Errors about tensors: shapes, types, sizes and files that describe them.
public struct TensorError: Error, CustomStringConvertible, Sendable, Equatable {
  public let message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}

/// A dense, row-major tensor with value semantics.
public struct Tensor: Sendable, Equatable {
  public enum Storage: Sendable, Equatable {
    case float32([Float])
    case float64([Double])
    case int64([Int64])
    case int32([Int32])
    case int8([Int8])
    case uint8([UInt8])
    case bool([Bool])

    var count: Int {
      switch self {
      case .float32(let a): return a.count
      case .float64(let a): return a.count
      case .int64(let a): return a.count
      case .int32(let a): return a.count
      case .int8(let a): return a.count
      case .uint8(let a): return a.count
      case .bool(let a): return a.count
      }
    }

    var dtype: DType {
      switch self {
      case .float32: return .float32
      case .float64: return .float64
      case .int64: return .int64
      case .int32: return .int32
      case .int8: return .int8
      case .uint8: return .uint8
      case .bool: return .bool
      }
    }
  }

  public private(set) var shape: [Int]
  public private(set) var storage: Storage
  public var dtype: DType { storage.dtype }
  public var count: Int { storage.count }
  public var rank: Int { shape.count }

  /// A tensor whose storage holds exactly `shape.product` elements.
  public init(shape: [Int], storage: Storage) throws(TensorError) {
    let n = try Tensor.elementCount(shape)
    guard n == storage.count else {
      throw TensorError("shape \(shape) needs \(n) elements, got \(storage.count)")
    }
    self.shape = shape
    self.storage = storage
  }

  /// For callers that have already checked `shape` against the storage's count.
  init(checkedShape shape: [Int], storage: Storage) {
    self.shape = shape
    self.storage = storage
  }

  public init(shape: [Int], floats: [Float]) throws(TensorError) {
    try self.init(shape: shape, storage: .float32(floats))
  }

  /// Elements in `shape`, with overflow and negative dimensions rejected.
  public static func elementCount(_ shape: [Int]) throws(TensorError) -> Int {
    var n = 1
    for d in shape {
      guard d >= 0 else { throw TensorError("negative dimension in shape \(shape)") }
      let (p, overflow) = n.multipliedReportingOverflow(by: d)
      guard !overflow else { throw TensorError("shape \(shape) overflows") }
      n = p
    }
    return n
  }

  /// The values as fp32 (integers converted), for computation.
  public var floats: [Float] {
    switch storage {
    case .float32(let a): return a
    case .float64(let a): return a.map { Float($0) }
    case .int64(let a): return a.map { Float($0) }
    case .int32(let a): return a.map { Float($0) }
    case .int8(let a): return a.map { Float($0) }
    case .uint8(let a): return a.map { Float($0) }
    case .bool(let a): return a.map { $0 ? 1 : 0 }
    }
  }

  /// The values as Int64 (floats truncated), for shapes and indices.
  public var int64s: [Int64] {
    switch storage {
    case .float32(let a): return a.map { Int64(exactly: $0.rounded(.towardZero)) ?? 0 }
    case .float64(let a): return a.map { Int64(exactly: $0.rounded(.towardZero)) ?? 0 }
    case .int64(let a): return a
    case .int32(let a): return a.map { Int64($0) }
    case .int8(let a): return a.map { Int64($0) }
    case .uint8(let a): return a.map { Int64($0) }
    case .bool(let a): return a.map { $0 ? 1 : 0 }
    }
  }

  /// The same values with another shape of equal element count.
  public func reshaped(_ newShape: [Int]) throws(TensorError) -> Tensor {
    try Tensor(shape: newShape, storage: storage)
  }
}
