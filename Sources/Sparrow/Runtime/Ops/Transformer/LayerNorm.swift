import Foundation

/// LayerNormalization (opset 17): normalises over the axes from `axis` (default -1) to the end,
/// `Y = (X - mean) / sqrt(var + epsilon) · Scale + B`, Scale and B broadcast to those axes;
/// optional outputs Mean and InvStdDev (shape X's up to `axis`, then 1s). FuseLayerNorm writes the
/// same node for the ReduceMean/Sub/Pow/Sqrt/Div pattern of older exports, possibly without Scale
/// (input "", meaning ones). Statistics in two passes (mean, then the mean square deviation), in
/// Float, by the row kernel (Kernels/rowwise); `stash_type` 1 (float) is the only one.
enum LayerNormOp: OpBuilder {
  static let opTypes = ["LayerNormalization"]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let x = try c.input(0)
    guard x.dtype == .float32 else { throw c.error("LayerNormalization takes float32, got \(x.dtype)") }
    let rank = x.shape.count
    guard rank > 0 else { throw c.error("LayerNormalization of a 0-d tensor") }
    let axis = try c.axis(try c.int("axis", -1), rank: rank)
    let eps = try c.float("epsilon", 1e-5)
    let stash = try c.int("stash_type", 1)
    guard stash == 1 else { throw c.error("stash_type \(stash) is not supported (only 1, float)") }
    let normShape = Array(x.shape[axis...])
    let n = normShape.reduce(1, *), outer = x.shape[..<axis].reduce(1, *)
    func table(_ i: Int, _ name: String) throws(ModelError) -> [Int32]? {
      guard c.hasInput(i) else { return nil }
      let t = try c.input(i)
      guard t.dtype == .float32 else { throw c.error("\(name) (input \(i)) must be float32, got \(t.dtype)") }
      guard t.shape.count <= normShape.count, broadcastShapes(t.shape, normShape) == normShape else {
        throw c.error("\(name) of shape \(t.shape) does not broadcast to the normalised shape \(normShape)")
      }
      if t.count == n { return nil }  // read directly
      let idx = BroadcastIndex(from: t.shape, to: normShape)
      return (0..<n).map { Int32(idx.source($0)) }
    }
    let scaleIndex = try table(1, "Scale"), biasIndex = try table(2, "B")
    var outs = [x]
    let statShape = Array(x.shape[..<axis]) + [Int](repeating: 1, count: rank - axis)
    for _ in 0..<min(max(c.node.outputs.count - 1, 0), 2) { outs.append(TensorType(.float32, statShape)) }
    try c.setOutputs(outs)
    return LayerNormStep(
      outer: outer, n: n, epsilon: eps, hasScale: c.hasInput(1), hasBias: c.hasInput(2), scaleIndex: scaleIndex,
      biasIndex: biasIndex, stats: outs.count > 1)
  }
}

struct LayerNormStep: Step {
  let outer: Int, n: Int
  let epsilon: Float
  let hasScale: Bool, hasBias: Bool
  /// Where Scale and B are broadcast (smaller than the normalised shape): their element per position.
  let scaleIndex: [Int32]?, biasIndex: [Int32]?
  let stats: Bool

  func run(_ c: StepContext) throws(RuntimeError) {
    let x = c.input(0, Float.self), y = c.output(0, Float.self)
    let scale = hasScale ? c.input(1, Float.self) : nil
    let bias = hasBias ? c.input(2, Float.self) : nil
    let meanOut = stats && c.outputIds.count > 1 && c.outputIds[1] >= 0 ? c.output(1, Float.self) : nil
    let invOut = stats && c.outputIds.count > 2 && c.outputIds[2] >= 0 ? c.output(2, Float.self) : nil
    guard n > 0 else { return }
    // The SIMD row kernel (Kernels/rowwise) with Scale and B read directly; broadcast ones are
    // applied after it.
    let direct = (scale: scaleIndex == nil ? scale : nil, bias: biasIndex == nil && scaleIndex == nil ? bias : nil)
    RowKernels.layerNorm(
      rows: outer, n: n, x: x, xStride: n, scale: direct.scale, bias: direct.bias, epsilon: epsilon, y: y, yStride: n,
      mean: meanOut, invStdDev: invOut, threads: c.threads)
    guard scaleIndex != nil || biasIndex != nil else { return }
    for o in 0..<outer {
      let py = y + o * n
      if let s = scale, let t = scaleIndex { for i in 0..<n { py[i] *= s[Int(t[i])] } }
      if let b = bias, direct.bias == nil {
        if let t = biasIndex { for i in 0..<n { py[i] += b[Int(t[i])] } } else { for i in 0..<n { py[i] += b[i] } }
      }
    }
  }
}
