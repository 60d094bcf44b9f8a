/// Conv → Mul(constant) [→ Add(constant)] becomes one Conv: a per-output-channel (or scalar)
/// scale `a` and shift `c` fold into the weights and bias, W'[o] = a[o]·W[o],
/// b'[o] = a[o]·b[o] + c[o]. Paddle exports write every "learnable affine" block this way
/// (PP-OCRv4: one after each of its 60-odd convolutions). Applies only where each folded
/// value feeds nothing else and the constants cannot change the output's shape.
enum FoldAffine {
  static func run(_ g: Graph) throws(ModelError) -> Graph {
    var g = g
    let index = GraphIndex(g)
    var removed = Set<Int>()
    for (ci, conv) in g.nodes.enumerated() where conv.opType == "Conv" && isDefaultDomain(conv) {
      guard !removed.contains(ci), conv.outputs.count == 1, conv.epilogue.isEmpty,
        conv.inputs.count >= 2, let w = g.constants[conv.inputs[1]], w.rank == 4, w.dtype == .float32
      else { continue }
      let m = w.shape[0]
      var bias = [Float](repeating: 0, count: m)
      if conv.inputs.count >= 3, !conv.inputs[2].isEmpty {
        guard let b = g.constants[conv.inputs[2]], b.count == m, b.dtype == .float32 else { continue }
        bias = b.floats
      }
      guard let (mi, scale) = affineConsumer(of: conv.outputs[0], op: "Mul", channels: m, g, index),
        !removed.contains(mi)
      else { continue }
      var last = mi
      var shift = [Float](repeating: 0, count: m)
      if let (ai, c) = affineConsumer(of: g.nodes[mi].outputs[0], op: "Add", channels: m, g, index),
        !removed.contains(ai)
      {
        last = ai
        shift = c
      }
      var wf = w.floats
      let per = wf.count / m
      for o in 0..<m {
        for j in 0..<per { wf[o * per + j] *= scale[o] }
        bias[o] = scale[o] * bias[o] + shift[o]
      }
      let weights: Tensor
      do { weights = try Tensor(shape: w.shape, floats: wf) } catch { throw ModelError(node: conv, "folding a constant scale: \(error.message)") }
      try Passes.replaceConvParameters(&g, at: ci, weights: weights, bias: bias, suffix: "_affine", output: g.nodes[last].outputs[0])
      removed.insert(mi)
      if last != mi { removed.insert(last) }
    }
    g.nodes = g.nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    return g
  }

  static func isDefaultDomain(_ n: Node) -> Bool { n.domain.isEmpty || n.domain == "ai.onnx" }

  /// The node reading `value` when it is its only reader, is `op` (Mul or Add) with the other
  /// operand a float constant of one value or one per channel (`[m,1,1]`, `[1,m,1,1]`): its
  /// index and the per-channel values.
  static func affineConsumer(
    of value: String, op: String, channels m: Int, _ g: Graph, _ index: GraphIndex
  ) -> (Int, [Float])? {
    guard let i = index.soleConsumer(of: value) else { return nil }
    let n = g.nodes[i]
    guard n.opType == op, isDefaultDomain(n), n.inputs.count == 2, n.outputs.count == 1, n.inputs[0] != n.inputs[1]
    else { return nil }
    let other = n.inputs[0] == value ? n.inputs[1] : n.inputs[0]
    guard let t = g.constants[other], t.dtype == .float32, t.rank <= 4 else { return nil }
    if t.count == 1 { return (i, [Float](repeating: t.floats[0], count: m)) }
    let s = t.shape
    guard t.count == m, s.count >= 3, s[s.count - 3] == m, s[s.count - 2] == 1, s[s.count - 1] == 1 else { return nil }
    return (i, t.floats)
  }
}
