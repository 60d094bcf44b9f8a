/// Tensors as raw bytes: the one place that knows each storage's memory layout (little-endian
/// elements as the CPU holds them, booleans one byte each, 0 or 1). Used by `.npy` files, plan
/// buffers and the server's binary tensors.
extension Tensor {
  /// Calls `body` with the elements' bytes (`count * dtype.size` of them).
  public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
    switch storage {
    case .float32(let a): return try a.withUnsafeBytes(body)
    case .float64(let a): return try a.withUnsafeBytes(body)
    case .int64(let a): return try a.withUnsafeBytes(body)
    case .int32(let a): return try a.withUnsafeBytes(body)
    case .int8(let a): return try a.withUnsafeBytes(body)
    case .uint8(let a): return try a.withUnsafeBytes(body)
    case .bool(let a): return try a.map { UInt8($0 ? 1 : 0) }.withUnsafeBytes(body)
    }
  }

  /// A tensor read from exactly `count(shape) * dtype.size` bytes (for booleans, nonzero is true).
  public init(shape: [Int], dtype: DType, bytes: UnsafeRawBufferPointer) throws(TensorError) {
    let count = try Tensor.elementCount(shape)
    let (want, overflow) = count.multipliedReportingOverflow(by: dtype.size)
    guard !overflow, bytes.count == want else {
      throw TensorError("\(bytes.count) bytes for shape \(shape) of \(dtype), which needs \(count * dtype.size)")
    }
    self.init(validShape: shape, dtype: dtype, bytes: bytes)
  }

  /// The same without checks: `shape` is known valid and `bytes` holds exactly its elements
  /// (plan buffers).
  init(validShape shape: [Int], dtype: DType, bytes: UnsafeRawBufferPointer) {
    let count = bytes.count / dtype.size
    func load<T>(_: T.Type) -> [T] {
      [T](unsafeUninitializedCapacity: count) { buf, n in
        UnsafeMutableRawBufferPointer(buf).copyMemory(from: bytes)
        n = count
      }
    }
    let storage: Storage
    switch dtype {
    case .float32: storage = .float32(load(Float.self))
    case .float64: storage = .float64(load(Double.self))
    case .int64: storage = .int64(load(Int64.self))
    case .int32: storage = .int32(load(Int32.self))
    case .int8: storage = .int8(load(Int8.self))
    case .uint8: storage = .uint8(load(UInt8.self))
    case .bool: storage = .bool(bytes.map { $0 != 0 })
    }
    self.init(checkedShape: shape, storage: storage)
  }
}
