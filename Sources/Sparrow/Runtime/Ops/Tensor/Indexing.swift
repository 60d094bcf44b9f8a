/// Index-driven reads and writes: GatherElements and ScatterND. Indices are int64 or int32,
/// negative ones count from the end; an index out of range is a run-time error naming it.

/// GatherElements(data, indices, axis): `out[i…] = data[i… with i[axis] = indices[i…]]`; the
/// output has the indices' shape.
enum GatherElementsOp: OpBuilder {
  static let opTypes = ["GatherElements"]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let x = try c.input(0), idx = try c.input(1)
    let rank = x.shape.count
    guard rank > 0, idx.shape.count == rank else {
      throw c.error("data \(x.shape) and indices \(idx.shape) must have one rank, at least 1")
    }
    guard idx.dtype == .int64 || idx.dtype == .int32 else { throw c.error("indices must be int64 or int32, got \(idx.dtype)") }
    let axis = try c.axis(try c.int("axis", 0), rank: rank)
    for d in 0..<rank where d != axis && idx.shape[d] > x.shape[d] {
      throw c.error("indices \(idx.shape) exceed data \(x.shape) on axis \(d)")
    }
    try c.setOutputs([TensorType(x.dtype, idx.shape)])
    return GatherElementsStep(
      indexShape: idx.shape, dataStrides: StridedWalk.contiguousStrides(x.shape), axis: axis, dim: x.shape[axis],
      elementSize: x.dtype.size, index32: idx.dtype == .int32)
  }
}

struct GatherElementsStep: Step {
  let indexShape: [Int]
  let dataStrides: [Int]
  let axis: Int, dim: Int
  let elementSize: Int
  let index32: Bool

  func run(_ c: StepContext) throws(RuntimeError) {
    let x = UnsafeRawPointer(c.input(0, UInt8.self)), y = UnsafeMutableRawPointer(c.output(0, UInt8.self))
    let i64 = index32 ? nil : c.input(1, Int64.self), i32 = index32 ? c.input(1, Int32.self) : nil
    let rank = indexShape.count, count = indexShape.reduce(1, *), size = elementSize
    guard count > 0 else { return }
    var index = [Int](repeating: 0, count: rank)
    var base = 0  // data offset of the current position, with the axis coordinate left out
    for j in 0..<count {
      let raw = i64.map { Int(truncatingIfNeeded: $0[j]) } ?? Int(i32?[j] ?? 0)
      let k = raw < 0 ? raw + dim : raw
      guard k >= 0, k < dim else {
        throw RuntimeError("index \(raw) at position \(j) is out of range for axis \(axis) of size \(dim)")
      }
      (y + j * size).copyMemory(from: x + (base + k * dataStrides[axis]) * size, byteCount: size)
      var d = rank - 1
      while d >= 0 {
        index[d] += 1
        if d != axis { base += dataStrides[d] }
        if index[d] < indexShape[d] { break }
        if d != axis { base -= dataStrides[d] * indexShape[d] }
        index[d] = 0
        d -= 1
      }
    }
  }
}

/// ScatterND(data, indices, updates): a copy of data with the slices the last axis of indices
/// names replaced by (`reduction` none) or combined with (add, mul, max, min; float32) updates.
enum ScatterNDOp: OpBuilder {
  static let opTypes = ["ScatterND"]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let x = try c.input(0), idx = try c.input(1), upd = try c.input(2)
    guard idx.dtype == .int64 else { throw c.error("indices must be int64, got \(idx.dtype)") }
    guard upd.dtype == x.dtype else { throw c.error("updates are \(upd.dtype), data \(x.dtype)") }
    guard let q = idx.shape.last, q >= 1, q <= x.shape.count else {
      throw c.error("indices of shape \(idx.shape) do not index data of shape \(x.shape)")
    }
    let want = Array(idx.shape.dropLast()) + Array(x.shape[q...])
    guard upd.shape == want else { throw c.error("updates have shape \(upd.shape), expected \(want)") }
    let reduction = try c.string("reduction", "none")
    let kind: ScatterNDStep.Reduction
    switch reduction {
    case "none": kind = .none
    case "add": kind = .add
    case "mul": kind = .mul
    case "max": kind = .max
    case "min": kind = .min
    default: throw c.error("reduction '\(reduction)' is not supported")
    }
    guard kind == .none || x.dtype == .float32 else { throw c.error("reduction '\(reduction)' needs float32 data") }
    try c.setOutputs([x])
    return ScatterNDStep(
      dataShape: x.shape, strides: StridedWalk.contiguousStrides(x.shape), q: q, updates: idx.count / q,
      slice: x.shape[q...].reduce(1, *), elementSize: x.dtype.size, count: x.count, reduction: kind)
  }
}

struct ScatterNDStep: Step {
  enum Reduction: Sendable { case none, add, mul, max, min }
  let dataShape: [Int]
  let strides: [Int]
  let q: Int, updates: Int, slice: Int
  let elementSize: Int, count: Int
  let reduction: Reduction

  func run(_ c: StepContext) throws(RuntimeError) {
    let y = UnsafeMutableRawPointer(c.output(0, UInt8.self))
    y.copyMemory(from: c.input(0, UInt8.self), byteCount: count * elementSize)
    let idx = c.input(1, Int64.self), u = UnsafeRawPointer(c.input(2, UInt8.self))
    for j in 0..<updates {
      var offset = 0
      for d in 0..<q {
        let raw = Int(truncatingIfNeeded: idx[j * q + d]), n = dataShape[d]
        let k = raw < 0 ? raw + n : raw
        guard k >= 0, k < n else { throw RuntimeError("index \(raw) in update \(j) is out of range for axis \(d) of size \(n)") }
        offset += k * strides[d]
      }
      let bytes = slice * elementSize
      if reduction == .none {
        (y + offset * elementSize).copyMemory(from: u + j * bytes, byteCount: bytes)
        continue
      }
      let py = y.assumingMemoryBound(to: Float.self) + offset, pu = u.assumingMemoryBound(to: Float.self) + j * slice
      switch reduction {
      case .add: for i in 0..<slice { py[i] += pu[i] }
      case .mul: for i in 0..<slice { py[i] *= pu[i] }
      case .max: for i in 0..<slice { py[i] = Swift.max(py[i], pu[i]) }
      case .min: for i in 0..<slice { py[i] = Swift.min(py[i], pu[i]) }
      case .none: break
      }
    }
  }
}

/// GatherND(data, indices; batch_dims b): for each index tuple (the last axis of indices, k
/// coordinates, negative ones counted from the end), the slice `data[batch][i_0, ..., i_{k-1}]`;
/// output shape `indices.shape[:-1] + data.shape[b + k:]`. The first b axes of data and indices
/// are batch axes and must be equal.
enum GatherNDOp: OpBuilder {
  static let opTypes = ["GatherND"]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let x = try c.input(0), idx = try c.input(1)
    guard idx.dtype == .int64 else { throw c.error("indices must be int64, got \(idx.dtype)") }
    let b = try c.int("batch_dims", 0)
    let r = x.shape.count, q = idx.shape.count
    guard r >= 1, q >= 1, b >= 0, b < min(r, q) else {
      throw c.error("batch_dims \(b) does not fit data \(x.shape) and indices \(idx.shape)")
    }
    guard Array(x.shape.prefix(b)) == Array(idx.shape.prefix(b)) else {
      throw c.error("the first \(b) axes of data \(x.shape) and indices \(idx.shape) must be equal")
    }
    let k = idx.shape[q - 1]
    guard k >= 1, k <= r - b else {
      throw c.error("indices' last axis is \(k): it must be in 1...\(r - b) for data \(x.shape) with batch_dims \(b)")
    }
    let outShape = Array(idx.shape.dropLast()) + Array(x.shape[(b + k)...])
    try c.setOutputs([TensorType(x.dtype, outShape)])
    let batches = x.shape.prefix(b).reduce(1, *)
    return GatherNDStep(
      batches: batches, tuplesPerBatch: batches == 0 ? 0 : idx.shape.dropLast().reduce(1, *) / batches,
      dims: Array(x.shape[b..<(b + k)]), strides: Array(StridedWalk.contiguousStrides(Array(x.shape[b...])).prefix(k)),
      slice: x.shape[(b + k)...].reduce(1, *), batchSize: x.shape[b...].reduce(1, *), elementSize: x.dtype.size)
  }
}

struct GatherNDStep: Step {
  let batches: Int, tuplesPerBatch: Int
  /// The indexed axes' sizes and strides (elements), within one batch item.
  let dims: [Int], strides: [Int]
  /// Elements per gathered slice, and per batch item of data.
  let slice: Int, batchSize: Int
  let elementSize: Int

  func run(_ c: StepContext) throws(RuntimeError) {
    let x = UnsafeRawPointer(c.input(0, UInt8.self)), y = UnsafeMutableRawPointer(c.output(0, UInt8.self))
    let idx = c.input(1, Int64.self)
    let k = dims.count, bytes = slice * elementSize
    for bi in 0..<batches {
      for t in 0..<tuplesPerBatch {
        let j = bi * tuplesPerBatch + t
        var offset = bi * batchSize
        for a in 0..<k {
          let raw = idx[j * k + a], d = Int64(dims[a])
          let v = raw < 0 ? raw + d : raw
          guard v >= 0, v < d else {
            throw RuntimeError("index \(raw) of tuple \(j) is out of range for an axis of size \(d)")
          }
          offset += Int(v) * strides[a]
        }
        (y + j * bytes).copyMemory(from: x + offset * elementSize, byteCount: bytes)
      }
    }
  }
}
