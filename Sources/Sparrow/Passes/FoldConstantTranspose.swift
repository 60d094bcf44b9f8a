/// `Transpose` of a constant 2-D matrix (perm [1, 0] or none) becomes a constant: the
/// transposed-weight form exporters write for linear layers (`MatMul(x, Transpose(W))`, W stored
/// `N_out x K` as torch's Linear holds it). Folded, the MatMul has a constant weight in the graph,
/// so bias and activation fusion see it; the planner would fold it anyway, too late for them.
enum FoldConstantTranspose {
  static func run(_ g: Graph) -> Graph {
    var g = g
    let outputs = Set(g.outputs.map(\.name))
    var kept: [Node] = []
    var freed: Set<String> = []
    for n in g.nodes {
      if n.opType == "Transpose", FoldAffine.isDefaultDomain(n), n.inputs.count == 1, n.outputs.count == 1,
        !outputs.contains(n.outputs[0]), g.constants[n.outputs[0]] == nil, let t = g.constants[n.inputs[0]],
        let folded = transposed(n, t)
      {
        g.constants[n.outputs[0]] = folded
        freed.insert(n.inputs[0])
      } else {
        kept.append(n)
      }
    }
    g.nodes = kept
    var read = outputs
    for n in kept { read.formUnion(n.inputs) }
    // The transposed weights' originals that nothing reads any more.
    for name in freed where !read.contains(name) && !g.inputs.contains(where: { $0.name == name }) {
      g.constants[name] = nil
    }
    return g
  }

  static func transposed(_ n: Node, _ t: Tensor) -> Tensor? {
    guard t.rank == 2, t.dtype == .float32 else { return nil }
    if case .ints(let p)? = n.attributes["perm"], p != [1, 0] { return nil }
    let (r, c) = (t.shape[0], t.shape[1])
    let f = t.floats
    var out = [Float](repeating: 0, count: r * c)
    for i in 0..<r { for j in 0..<c { out[j * r + i] = f[i * c + j] } }
    return try? Tensor(shape: [c, r], floats: out)
  }
}
