/// Graph-to-graph rewrites run between import and planning, one pass per file.
public enum Passes {
  /// The default pipeline: BatchNorm and constant-affine folding, HardSwish fusion, then
  /// activation fusion.
  public static func optimize(_ g: Graph) throws(ModelError) -> Graph {
    var g = g
    g = try FoldBatchNorm.run(g)
    g = try FoldAffine.run(g)
    g = FuseHardSwish.run(g)
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

  /// A constant name not yet used in `g`.
  static func freshName(_ base: String, in g: Graph) -> String {
    var name = base
    var i = 1
    while g.constants[name] != nil { name = "\(base)_\(i)"; i += 1 }
    return name
  }
}
