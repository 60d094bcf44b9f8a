import Foundation

/// Data movement: Transpose, Concat, Split, Slice, Gather. All copy elements of any type by
/// size; index tables and strides are computed at plan time.

/// Transpose by `perm` (default: reversed axes).
enum TransposeOp: OpBuilder {
  static let opTypes = ["Transpose"]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let x = try c.input(0)
    let rank = x.shape.count
    let perm = try c.ints("perm") ?? Array((0..<rank).reversed())
    guard perm.count == rank, Set(perm) == Set(0..<rank) else {
      throw c.error("perm \(perm) is not a permutation of 0..<\(rank)")
    }
    let inStrides = StridedWalk.contiguousStrides(x.shape)
    let out = perm.map { x.shape[$0] }
    try c.setOutputs([TensorType(x.dtype, out)])
    return StridedCopyStep(walk: StridedWalk(dims: out, strides: perm.map { inStrides[$0] }), elementSize: x.dtype.size)
  }
}

/// Concat along `axis`: every input has the same type, rank and dimensions off the axis.
enum ConcatOp: OpBuilder {
  static let opTypes = ["Concat"]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let first = try c.input(0)
    let rank = first.shape.count
    guard rank > 0 else { throw c.error("Concat of 0-d tensors") }
    guard case .int? = c.node.attributes["axis"] else { throw c.error("attribute 'axis' (an int) is required") }
    let axis = try c.axis(try c.int("axis", 0), rank: rank)
    var out = first.shape
    out[axis] = 0
    var chunks: [Int] = []
    for i in c.inputs.indices {
      let t = try c.input(i)
      guard t.dtype == first.dtype else { throw c.error("input \(i) is \(t.dtype), input 0 is \(first.dtype)") }
      guard t.shape.count == rank, t.shape.indices.allSatisfy({ $0 == axis || t.shape[$0] == first.shape[$0] }) else {
        throw c.error("input \(i) has shape \(t.shape), which does not match \(first.shape) off axis \(axis)")
      }
      out[axis] += t.shape[axis]
      chunks.append(t.shape[axis...].reduce(1, *) * t.dtype.size)
    }
    try c.setOutputs([TensorType(first.dtype, out)])
    return ConcatStep(outer: first.shape[..<axis].reduce(1, *), chunkBytes: chunks)
  }
}

struct ConcatStep: Step {
  let outer: Int
  /// Bytes per input per outer index.
  let chunkBytes: [Int]

  func run(_ c: StepContext) throws(RuntimeError) {
    let y = UnsafeMutableRawPointer(c.output(0, UInt8.self))
    let row = chunkBytes.reduce(0, +)
    var offset = 0
    for (i, chunk) in chunkBytes.enumerated() where chunk > 0 {
      let x = UnsafeRawPointer(c.input(i, UInt8.self))
      for o in 0..<outer { (y + o * row + offset).copyMemory(from: x + o * chunk, byteCount: chunk) }
      offset += chunk
    }
  }
}

/// Split along `axis` (default 0): sizes from the `split` attribute (before opset 13), the
/// constant `split` input (from 13), `num_outputs` (from 18, last part smaller), or equal parts.
enum SplitOp: OpBuilder {
  static let opTypes = ["Split"]
  static let shapeInputs = [1]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let x = try c.input(0)
    let axis = try c.axis(try c.int("axis", 0), rank: x.shape.count)
    let dim = x.shape[axis]
    let parts = c.node.outputs.count
    var sizes: [Int]
    if c.opset >= 13, c.hasInput(1) {
      sizes = try c.constantInts(1, "split")
    } else if c.opset < 13, let s = try c.ints("split") {
      sizes = s
    } else if c.opset >= 18, c.node.attributes["num_outputs"] != nil {
      let n = try c.int("num_outputs", 0)
      guard n >= 1, n == parts else { throw c.error("num_outputs \(n) does not match the \(parts) outputs") }
      let chunk = (dim + n - 1) / n
      sizes = (0..<n).map { max(min(chunk, dim - $0 * chunk), 0) }
    } else {
      guard parts >= 1, dim % parts == 0 else { throw c.error("axis \(axis) of size \(dim) does not split into \(parts) equal parts") }
      sizes = [Int](repeating: dim / parts, count: parts)
    }
    guard sizes.count == parts, sizes.allSatisfy({ $0 >= 0 && $0 <= dim }), sizes.reduce(0, +) == dim else {
      throw c.error("split sizes \(sizes) do not cover axis \(axis) of size \(dim) in \(parts) outputs")
    }
    let inner = x.shape[(axis + 1)...].reduce(1, *) * x.dtype.size
    try c.setOutputs(sizes.map { s in
      var shape = x.shape
      shape[axis] = s
      return TensorType(x.dtype, shape)
    })
    return SplitStep(outer: x.shape[..<axis].reduce(1, *), rowBytes: dim * inner, chunkBytes: sizes.map { $0 * inner })
  }
}

struct SplitStep: Step {
  let outer: Int
  let rowBytes: Int
  let chunkBytes: [Int]

  func run(_ c: StepContext) throws(RuntimeError) {
    let x = UnsafeRawPointer(c.input(0, UInt8.self))
    var offset = 0
    for (i, chunk) in chunkBytes.enumerated() {
      defer { offset += chunk }
      guard chunk > 0, c.outputIds[i] >= 0 else { continue }
      let y = UnsafeMutableRawPointer(c.output(i, UInt8.self))
      for o in 0..<outer { (y + o * chunk).copyMemory(from: x + o * rowBytes + offset, byteCount: chunk) }
    }
  }
}

/// Slice with constant starts/ends/axes/steps (inputs from opset 10, attributes before):
/// negative values count from the end, out-of-range values clamp, steps may be negative.
enum SliceOp: OpBuilder {
  static let opTypes = ["Slice"]
  static let shapeInputs = [1, 2, 3, 4]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let x = try c.input(0)
    let rank = x.shape.count
    let starts: [Int], ends: [Int], axesIn: [Int]?, stepsIn: [Int]?
    if c.opset < 10 {
      guard let s = try c.ints("starts"), let e = try c.ints("ends") else { throw c.error("starts and ends are required") }
      (starts, ends, axesIn, stepsIn) = (s, e, try c.ints("axes"), nil)
    } else {
      starts = try c.constantInts(1, "starts")
      ends = try c.constantInts(2, "ends")
      axesIn = c.hasInput(3) ? try c.constantInts(3, "axes") : nil
      stepsIn = c.hasInput(4) ? try c.constantInts(4, "steps") : nil
    }
    let axes = try c.normalisedAxes(axesIn ?? Array(0..<starts.count), rank: rank)
    let steps = stepsIn ?? [Int](repeating: 1, count: starts.count)
    guard ends.count == starts.count, axes.count == starts.count, steps.count == starts.count else {
      throw c.error("starts \(starts), ends \(ends), axes \(axes) and steps \(steps) differ in length")
    }
    var out = x.shape
    var first = [Int](repeating: 0, count: rank)
    var step = [Int](repeating: 1, count: rank)
    for (k, a) in axes.enumerated() {
      let d = x.shape[a], s = steps[k]
      guard s != 0 else { throw c.error("step 0 on axis \(a)") }
      var b = starts[k], e = ends[k]
      if b < 0 { b = b &+ d }
      if e < 0 { e = e &+ d }
      // Counted through the step's magnitude: steps may be as large as INT64_MAX/MIN.
      let n: Int
      if s > 0 {
        b = min(max(b, 0), d)
        e = min(max(e, 0), d)
        n = e > b ? 1 + Int(UInt(e - b - 1) / s.magnitude) : 0
      } else {
        b = min(max(b, 0), d - 1)
        e = min(max(e, -1), d - 1)
        n = b > e ? 1 + Int(UInt(b - e - 1) / s.magnitude) : 0
      }
      out[a] = n
      first[a] = b
      // With two or more elements |s| < d, so the stride cannot overflow.
      step[a] = n > 1 ? s : 1
    }
    let inStrides = StridedWalk.contiguousStrides(x.shape)
    let base = out.contains(0) ? 0 : zip(first, inStrides).reduce(0) { $0 + $1.0 * $1.1 }
    try c.setOutputs([TensorType(x.dtype, out)])
    return StridedCopyStep(
      walk: StridedWalk(dims: out, strides: zip(inStrides, step).map { $0 * $1 }, base: base), elementSize: x.dtype.size)
  }
}

/// Gather along `axis` (default 0) with int64 or int32 indices, negative ones counting from the
/// end. An index out of range is an error (at plan time when the indices are constants).
enum GatherOp: OpBuilder {
  static let opTypes = ["Gather"]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let x = try c.input(0), idx = try c.input(1)
    let rank = x.shape.count
    guard rank > 0 else { throw c.error("Gather from a 0-d tensor") }
    let axis = try c.axis(try c.int("axis", 0), rank: rank)
    guard idx.dtype == .int64 || idx.dtype == .int32 else { throw c.error("indices must be int64 or int32, got \(idx.dtype)") }
    let dim = x.shape[axis]
    if let k = c.constant(1), let bad = k.int64s.first(where: { $0 < -Int64(dim) || $0 >= Int64(dim) }) {
      throw c.error("index \(bad) is out of range for axis \(axis) of size \(dim)")
    }
    try c.setOutputs([TensorType(x.dtype, Array(x.shape[..<axis]) + idx.shape + Array(x.shape[(axis + 1)...]))])
    return GatherStep(
      outer: x.shape[..<axis].reduce(1, *), dim: dim, count: idx.count,
      innerBytes: x.shape[(axis + 1)...].reduce(1, *) * x.dtype.size, index32: idx.dtype == .int32)
  }
}

struct GatherStep: Step {
  let outer: Int, dim: Int, count: Int
  let innerBytes: Int
  let index32: Bool

  func run(_ c: StepContext) throws(RuntimeError) {
    let x = UnsafeRawPointer(c.input(0, UInt8.self)), y = UnsafeMutableRawPointer(c.output(0, UInt8.self))
    let i64 = index32 ? nil : c.input(1, Int64.self), i32 = index32 ? c.input(1, Int32.self) : nil
    for j in 0..<count {
      let raw = i64.map { Int(truncatingIfNeeded: $0[j]) } ?? Int(i32?[j] ?? 0)
      let k = raw < 0 ? raw + dim : raw
      guard k >= 0, k < dim else { throw RuntimeError("index \(raw) at position \(j) is out of range for a dimension of size \(dim)") }
      for o in 0..<outer {
        (y + (o * count + j) * innerBytes).copyMemory(from: x + (o * dim + k) * innerBytes, byteCount: innerBytes)
      }
    }
  }
}
