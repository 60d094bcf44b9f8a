import Foundation

/// Softmax (and LogSoftmax). Before opset 13 the input is coerced to 2-D at `axis` (default 1)
/// and normalised over the whole flattened trailing part; from 13 it is normalised along `axis`
/// (default -1) alone. Softmax over the last axis runs the row kernel (Kernels/rowwise); with a
/// scaling and mask fused in (FuseMaskedSoftmax), `MaskedSoftmaxStep`.
enum SoftmaxOp: OpBuilder {
  static let opTypes = ["Softmax", "LogSoftmax"]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let x = try c.input(0)
    guard x.dtype == .float32 else { throw c.error("\(c.node.opType) takes float32, got \(x.dtype)") }
    if let fused = c.node.epilogue.softmaxInput { return try MaskedSoftmaxStep.build(&c, x, fused) }
    let rank = x.shape.count
    let legacy = c.opset < 13
    let a = try c.int("axis", legacy ? 1 : -1)
    let outer: Int, n: Int, inner: Int
    if rank == 0 {
      (outer, n, inner) = (1, 1, 1)
    } else if legacy {
      // The spec's 2-D coercion would allow axis == rank, but ONNX Runtime refuses the model
      // (axis must be in [-rank, rank)): so does Sparrow, rather than answer ones.
      let r = a < 0 ? a + rank : a
      guard r >= 0, r < rank else { throw c.error("axis \(a) is out of range for rank \(rank)") }
      (outer, n, inner) = (x.shape[..<r].reduce(1, *), x.shape[r...].reduce(1, *), 1)
    } else {
      let r = try c.axis(a, rank: rank)
      (outer, n, inner) = (x.shape[..<r].reduce(1, *), x.shape[r], x.shape[(r + 1)...].reduce(1, *))
    }
    try c.setOutputs([x])
    return SoftmaxStep(outer: outer, n: n, inner: inner, log: c.node.opType == "LogSoftmax")
  }
}

struct SoftmaxStep: Step {
  let outer: Int, n: Int, inner: Int
  let log: Bool

  func run(_ c: StepContext) throws(RuntimeError) {
    let x = c.input(0, Float.self), y = c.output(0, Float.self)
    guard n > 0 else { return }
    if inner == 1 && !log {
      // Over the last axis: the SIMD row kernel (Kernels/rowwise).
      RowKernels.softmax(rows: outer, n: n, x: x, xStride: n, y: y, yStride: n, threads: c.threads)
      return
    }
    for o in 0..<outer {
      for j in 0..<inner {
        let base = o * n * inner + j
        var m = -Float.infinity
        for i in 0..<n { m = max(m, x[base + i * inner]) }
        var sum: Float = 0
        for i in 0..<n {
          let e = Foundation.exp(x[base + i * inner] - m)
          y[base + i * inner] = e
          sum += e
        }
        if log {
          let l = Foundation.log(sum) + m
          for i in 0..<n { y[base + i * inner] = x[base + i * inner] - l }
        } else {
          let s = 1 / sum
          for i in 0..<n { y[base + i * inner] *= s }
        }
      }
    }
  }
}

/// `softmax(x · scale + mask)` over the last axis (FuseMaskedSoftmax), x and the mask (input 1)
/// broadcast together, as the Add they replace. A mask whose last axis is the scores' runs
/// inside the row kernel, each row reading its mask row through a table of offsets; any other
/// broadcast is added element by element in a first pass.
struct MaskedSoftmaxStep: Step {
  let rows: Int, n: Int
  let scale: Float
  /// Per row of x, the offset of its mask row (mask's last axis is n); nil: no mask.
  let maskRows: [UInt32]?
  /// Where the sum is built element by element: x's and the mask's broadcast to the output.
  let elementwise: (x: BroadcastIndex, mask: BroadcastIndex)?

  static func build(_ c: inout BuildContext, _ x: TensorType, _ f: FusedEpilogue.SoftmaxInput) throws(ModelError) -> any Step {
    var out = x.shape
    var maskRows: [UInt32]? = nil, elementwise: (x: BroadcastIndex, mask: BroadcastIndex)? = nil
    if f.masked {
      let m = try c.input(1)
      guard m.dtype == .float32 else { throw c.error("the mask added before Softmax must be float32, got \(m.dtype)") }
      guard let o = broadcastShapes(x.shape, m.shape) else {
        throw c.error("the mask of shape \(m.shape) added before Softmax does not broadcast with the scores' \(x.shape)")
      }
      out = o
      guard TensorType(.float32, out).bytes <= c.tensorLimit else { throw c.overLimit("Softmax of shape \(out)") }
      guard m.count < Int(UInt32.max) else { throw c.error("the mask added before Softmax has too many elements") }
      let n = out.last ?? 1, rows = n == 0 ? 0 : TensorType(.float32, out).count / n
      let idx = BroadcastIndex(from: m.shape, to: out)
      if out == x.shape && (m.shape.last == n || n == 1) {
        maskRows = (0..<rows).map { UInt32(idx.source($0 * n)) }
      } else {
        elementwise = (BroadcastIndex(from: x.shape, to: out), idx)
      }
    }
    guard let n = out.last else { throw c.error("Softmax of a 0-d tensor") }
    try c.setOutputs([TensorType(.float32, out)])
    return MaskedSoftmaxStep(
      rows: n == 0 ? 0 : TensorType(.float32, out).count / n, n: n, scale: f.scale, maskRows: maskRows,
      elementwise: elementwise)
  }

  func run(_ c: StepContext) throws(RuntimeError) {
    let x = c.input(0, Float.self), y = c.output(0, Float.self)
    guard rows > 0, n > 0 else { return }
    if let (xi, mi) = elementwise {
      let m = c.input(1, Float.self)
      for i in 0..<(rows * n) { y[i] = x[xi.source(i)] * scale + m[mi.source(i)] }
      RowKernels.softmax(rows: rows, n: n, x: y, xStride: n, y: y, yStride: n, threads: c.threads)
      return
    }
    let mask = maskRows != nil ? c.input(1, Float.self) : nil
    maskRows.withOptionalPointer { offsets in
      RowKernels.softmax(
        rows: rows, n: n, x: x, xStride: n, alpha: scale, mask: mask, maskRows: offsets, y: y, yStride: n,
        threads: c.threads)
    }
  }
}
