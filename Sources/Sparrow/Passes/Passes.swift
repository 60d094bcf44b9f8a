/// Graph-to-graph rewrites run between import and planning, one pass per file.
public enum Passes {
  /// The default pipeline: Identity, Reshape, Squeeze and Unsqueeze of constants folded into
  /// constants (torch's exporter writes deduplicated initializers as `Identity(initializer)`: a
  /// BatchNorm whose bias was one stayed a separate step), QDQ groups around Conv/MatMul/Gemm fused into int8 steps (FuseQDQ),
  /// then the QDQ groups around Add (FuseQLinearAdd) and MaxPool (FuseQDQMaxPool),
  /// BatchNorm and constant-affine folding, HardSwish, LayerNorm, GELU and masked-softmax fusion, constant weight transposes folded, attention's transposes folded into
  /// its MatMuls, linear layers' bias then activation fusion, then
  /// learned gates' score sub-graphs into one step each, learned-gate fusion (after the activation:
  /// the gate multiplies the clamped output). `gateScore: false` leaves the score sub-graphs as
  /// the model wrote them (tests compare the two).
  public static func optimize(_ g: Graph, gateScore: Bool = true) throws(ModelError) -> Graph {
    var g = FoldConstantReshapes.run(g)
    g = FuseQDQ.run(g)
    g = FuseQLinearAdd.run(g)
    g = FuseQDQMaxPool.run(g)
    g = try FoldBatchNorm.run(g)
    g = try FoldAffine.run(g)
    g = FuseHardSwish.run(g)
    g = FuseLayerNorm.run(g)
    g = FuseGelu.run(g)
    g = FuseMaskedSoftmax.run(g)
    g = FoldConstantTranspose.run(g)
    g = FoldMatMulTranspose.run(g)
    g = FuseLinearBias.run(g)
    g = FuseActivation.run(g)
    if gateScore { g = FuseGateScore.run(g) }
    g = FuseLearnedGate.run(g)
    return g
  }

  /// Node `index` (a Conv) gets new constant weights and bias (named after its weight plus
  /// `suffix`) and writes `output` instead of its own: what folding a following per-channel
  /// op into a Conv ends with.
  static func replaceConvParameters(
    _ g: inout Graph, at index: Int, weights: Tensor, bias: [Float], suffix: String, output: String
  ) throws(ModelError) {
    let conv = g.nodes[index]
    let wName = freshName(conv.inputs[1] + suffix, in: g)
    let bName = freshName(conv.inputs[1] + suffix + "_bias", in: g)
    do {
      g.constants[bName] = try Tensor(shape: [bias.count], floats: bias)
    } catch { throw ModelError(node: conv, "folding into the weights: \(error.message)") }
    g.constants[wName] = weights
    var folded = conv
    folded.inputs = [conv.inputs[0], wName, bName]
    folded.outputs = [output]
    g.nodes[index] = folded
  }

  /// A constant name not yet used in `g`.
  static func freshName(_ base: String, in g: Graph) -> String {
    var name = base
    var i = 1
    while g.constants[name] != nil { name = "\(base)_\(i)"; i += 1 }
    return name
  }
}
