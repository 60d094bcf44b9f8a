/// Exports before opset 17 write LayerNorm as
/// `d = x - ReduceMean(x); y = d / Sqrt(ReduceMean(Pow(d, 2)) + eps)` over the last axis, then
/// `· gamma + beta`. The chain becomes one LayerNormalization node (axis -1), with the following
/// Mul and Add by constant vectors absorbed as Scale and B (an absent Scale means ones). Only
/// ReduceMean over axes [-1] with keepdims is matched: the graph has no shapes here, and -1 is
/// what exporters write.
enum FuseLayerNorm {
  static func run(_ g: Graph) -> Graph {
    var g = g
    let ix = PatternIndex(g)
    var removed = Set<Int>()
    var replaced: [Int: Node] = [:]
    func lastAxisMean(_ n: Node) -> Bool {
      guard (try? intAttr(n, "keepdims")) ?? 1 == 1 else { return false }
      if case .ints(let a)? = n.attributes["axes"] { return a == [-1] }
      if n.inputs.count > 1, let t = g.constants[n.inputs[1]] { return t.int64s == [-1] }
      return false
    }
    for (di, div) in g.nodes.enumerated() where div.opType == "Div" && FoldAffine.isDefaultDomain(div) {
      guard div.inputs.count == 2, div.outputs.count == 1, !removed.contains(di) else { continue }
      let d = div.inputs[0]
      guard let (si, sub) = ix.producer(of: d, "Sub"), sub.inputs.count == 2, ix.uses[d] == 2,
        let (mi, mean) = ix.producer(of: sub.inputs[1], "ReduceMean"), ix.uses[sub.inputs[1]] == 1,
        mean.inputs.first == sub.inputs[0], lastAxisMean(mean),
        let (qi, sqrt) = ix.producer(of: div.inputs[1], "Sqrt"), ix.uses[div.inputs[1]] == 1,
        let (ai, add) = ix.producer(of: sqrt.inputs[0], "Add"), ix.uses[sqrt.inputs[0]] == 1,
        add.inputs.count == 2
      else { continue }
      // Add(var, eps) in either order.
      var varName: String? = nil, eps: Float = 0
      for (v, e) in [(add.inputs[0], add.inputs[1]), (add.inputs[1], add.inputs[0])] {
        if let s = ix.scalar(e) { (varName, eps) = (v, s) }
      }
      guard let v = varName, let (vi, vmean) = ix.producer(of: v, "ReduceMean"), ix.uses[v] == 1, lastAxisMean(vmean),
        let p = vmean.inputs.first, ix.uses[p] == 1, let pi = ix.index.producer(of: p)
      else { continue }
      let pow = g.nodes[pi]
      let squares =
        (pow.opType == "Pow" && pow.inputs.count == 2 && pow.inputs[0] == d && ix.scalar(pow.inputs[1]) == 2)
        || (pow.opType == "Mul" && pow.inputs == [d, d])
      guard squares, FoldAffine.isDefaultDomain(pow) else { continue }
      var chain = [mi, si, pi, vi, ai, qi, di]
      var scale = "", bias = ""
      var last = div.outputs[0]
      if let (ki, mul) = ix.soleConsumer(of: last, "Mul"), let o = ix.other(mul, last), g.constants[o]?.rank == 1 {
        scale = o
        chain.append(ki)
        last = mul.outputs[0]
      }
      if let (bi, badd) = ix.soleConsumer(of: last, "Add"), let o = ix.other(badd, last), g.constants[o]?.rank == 1 {
        bias = o
        chain.append(bi)
        last = badd.outputs[0]
      }
      guard !chain.contains(where: removed.contains) else { continue }
      let end = chain.removeLast()
      removed.formUnion(chain)
      replaced[end] = Node(
        name: div.name.isEmpty ? "layernorm" : div.name + "_layernorm", opType: "LayerNormalization",
        inputs: [sub.inputs[0], scale, bias], outputs: [last],
        attributes: ["axis": .int(-1), "epsilon": .float(eps)])
    }
    PatternIndex.apply(&g, removed: removed, replaced: replaced)
    return g
  }

  private static func intAttr(_ n: Node, _ name: String) throws -> Int? {
    if case .int(let v)? = n.attributes[name] { return Int(v) }
    return nil
  }
}
