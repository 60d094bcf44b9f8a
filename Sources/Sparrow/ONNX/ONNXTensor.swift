import Foundation
import SwiftProtobuf

/// ONNX `TensorProto` data types Sparrow reads, by their enum value.
enum ONNXDataType {
  static func dtype(_ code: Int32) -> DType? {
    switch code {
    case 1: return .float32
    case 2: return .uint8
    case 3: return .int8
    case 6: return .int32
    case 7: return .int64
    case 9: return .bool
    case 11: return .float64
    default: return nil
    }
  }

  static func code(_ d: DType) -> Int32 {
    switch d {
    case .float32: return 1
    case .uint8: return 2
    case .int8: return 3
    case .int32: return 6
    case .int64: return 7
    case .bool: return 9
    case .float64: return 11
    }
  }

  static func name(_ code: Int32) -> String {
    let names: [Int32: String] = [
      0: "UNDEFINED", 1: "FLOAT", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16", 6: "INT32", 7: "INT64",
      8: "STRING", 9: "BOOL", 10: "FLOAT16", 11: "DOUBLE", 12: "UINT32", 13: "UINT64", 14: "COMPLEX64",
      15: "COMPLEX128", 16: "BFLOAT16", 17: "FLOAT8E4M3FN", 18: "FLOAT8E4M3FNUZ", 19: "FLOAT8E5M2",
      20: "FLOAT8E5M2FNUZ", 21: "UINT4", 22: "INT4", 23: "FLOAT4E2M1",
    ]
    return names[code] ?? "type \(code)"
  }
}

extension Tensor {
  /// Decodes an ONNX tensor, checking that the data is exactly as long as its shape says.
  /// `maxElements` bounds what one tensor may allocate.
  init(onnx t: Onnx_TensorProto, maxElements: Int) throws(ModelError) {
    let what = t.name.isEmpty ? "tensor" : "tensor '\(t.name)'"
    if t.dataLocation == .external || !t.externalData.isEmpty {
      throw ModelError("\(what) keeps its data in an external file that was not read (load the model from its file)")
    }
    guard let dtype = ONNXDataType.dtype(t.dataType) else {
      throw ModelError("\(what) has data type \(ONNXDataType.name(t.dataType)), which Sparrow does not support")
    }
    let shape = t.dims.map { Int(clamping: $0) }
    let count: Int
    do { count = try Tensor.elementCount(shape) } catch { throw ModelError("\(what): \(error.message)") }
    guard count <= maxElements else {
      throw ModelError("\(what) has \(count) elements, over the limit of \(maxElements)")
    }
    func mismatch(_ got: Int) -> ModelError {
      ModelError("\(what) of shape \(shape) needs \(count) values, holds \(got)")
    }
    if t.hasRawData {
      let raw = t.rawData
      guard raw.count == count * dtype.size else {
        throw ModelError("\(what) of shape \(shape) needs \(count * dtype.size) bytes of raw data, holds \(raw.count)")
      }
      let loaded = raw.withUnsafeBytes { b in
        Result { () throws(TensorError) -> Tensor in try Tensor(shape: shape, dtype: dtype, bytes: b) }
      }
      switch loaded {
      case .success(let t): self = t
      case .failure(let e): throw ModelError("\(what): \(e.message)")
      }
      return
    }
    // Typed fields: int8/uint8/bool/int32 all live in int32_data.
    let storage: Storage
    switch dtype {
    case .float32:
      guard t.floatData.count == count else { throw mismatch(t.floatData.count) }
      storage = .float32(t.floatData)
    case .float64:
      guard t.doubleData.count == count else { throw mismatch(t.doubleData.count) }
      storage = .float64(t.doubleData)
    case .int64:
      guard t.int64Data.count == count else { throw mismatch(t.int64Data.count) }
      storage = .int64(t.int64Data)
    case .int32, .int8, .uint8, .bool:
      guard t.int32Data.count == count else { throw mismatch(t.int32Data.count) }
      switch dtype {
      case .int32: storage = .int32(t.int32Data)
      case .int8: storage = .int8(t.int32Data.map { Int8(truncatingIfNeeded: $0) })
      case .uint8: storage = .uint8(t.int32Data.map { UInt8(truncatingIfNeeded: $0) })
      default: storage = .bool(t.int32Data.map { $0 != 0 })
      }
    }
    self.init(checkedShape: shape, storage: storage)
  }

  /// Encodes as an ONNX tensor with raw little-endian data.
  func onnx(name: String) -> Onnx_TensorProto {
    var t = Onnx_TensorProto()
    t.name = name
    t.dims = shape.map { Int64($0) }
    t.dataType = ONNXDataType.code(dtype)
    func bytes<T>(_ a: [T]) -> Data { a.withUnsafeBytes { Data($0) } }
    switch storage {
    case .float32(let a): t.rawData = bytes(a)
    case .float64(let a): t.rawData = bytes(a)
    case .int64(let a): t.rawData = bytes(a)
    case .int32(let a): t.rawData = bytes(a)
    case .int8(let a): t.rawData = bytes(a)
    case .uint8(let a): t.rawData = bytes(a)
    case .bool(let a): t.rawData = Data(a.map { $0 ? 1 : 0 })
    }
    return t
  }
}
