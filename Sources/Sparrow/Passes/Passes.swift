/// Graph-to-graph rewrites run between import and planning, one pass per file.
public enum Passes {
  /// The default pipeline: BatchNorm and constant-affine folding, HardSwish, LayerNorm and GELU
  /// fusion, then activation fusion.
  public static func optimize(_ g: Graph) throws(ModelError) -> Graph {
    var g = g
    g = try FoldBatchNorm.run(g)
    g = try FoldAffine.run(g)
    g = FuseHardSwish.run(g)
    g = FuseLayerNorm.run(g)
    g = FuseGelu.run(g)
    g = FuseActivation.run(g)
    return g
  }

  /// How many times each value is read (node inputs and graph outputs).
  static func useCounts(_ g: Graph) -> [String: Int] {
    var uses: [String: Int] = [:]
    for n in g.nodes { for i in n.inputs where !i.isEmpty { uses[i, default: 0] += 1 } }
    for o in g.outputs { uses[o.name, default: 0] += 1 }
    return uses
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
