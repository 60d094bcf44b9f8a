/// Conv → BatchNormalization (inference, constant parameters) becomes one Conv with scaled
/// weights and a shifted bias: W'[o] = W[o]·s[o], b'[o] = (b[o] − mean[o])·s[o] + B[o] with
/// s = scale / sqrt(var + epsilon). Applies only where the Conv's output feeds nothing else.
enum FoldBatchNorm {
  static func run(_ g: Graph) throws(ModelError) -> Graph {
    var g = g
    let index = GraphIndex(g)
    var removed = Set<Int>()
    for (bi, bn) in g.nodes.enumerated() where bn.opType == "BatchNormalization" && bn.inputs.count == 5 {
      guard let ci = index.producer(of: bn.inputs[0]), !removed.contains(ci) else { continue }
      let conv = g.nodes[ci]
      guard conv.opType == "Conv", index.uses(bn.inputs[0]) == 1, bn.outputs.count >= 1,
        bn.outputs.dropFirst().allSatisfy(\.isEmpty),
        conv.inputs.count >= 2, let w = g.constants[conv.inputs[1]], w.rank == 4, w.dtype == .float32,
        let scale = g.constants[bn.inputs[1]], let shift = g.constants[bn.inputs[2]],
        let mean = g.constants[bn.inputs[3]], let variance = g.constants[bn.inputs[4]]
      else { continue }
      if case .int(let t)? = bn.attributes["training_mode"], t != 0 { continue }
      let m = w.shape[0]
      guard [scale, shift, mean, variance].allSatisfy({ $0.count == m }) else { continue }
      var eps: Float = 1e-5
      if case .float(let e)? = bn.attributes["epsilon"] { eps = e }
      let sc = scale.floats, sh = shift.floats, mu = mean.floats, va = variance.floats
      var bias = [Float](repeating: 0, count: m)
      if conv.inputs.count >= 3, !conv.inputs[2].isEmpty {
        guard let b = g.constants[conv.inputs[2]], b.count == m else { continue }
        bias = b.floats
      }
      var wf = w.floats
      let per = wf.count / m
      for o in 0..<m {
        let s = sc[o] / (va[o] + eps).squareRoot()
        for j in 0..<per { wf[o * per + j] *= s }
        bias[o] = (bias[o] - mu[o]) * s + sh[o]
      }
      let weights: Tensor
      do { weights = try Tensor(shape: w.shape, floats: wf) } catch { throw ModelError(node: conv, "folding BatchNorm: \(error.message)") }
      try Passes.replaceConvParameters(&g, at: ci, weights: weights, bias: bias, suffix: "_bnfolded", output: bn.outputs[0])
      removed.insert(bi)
    }
    g.nodes = g.nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    return g
  }
}
