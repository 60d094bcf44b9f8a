/// Exporters that lack HardSwish write it as `x · Clip(x + 3, 0, 6) / 6` (four element-wise
/// passes; Paddle's PP-OCR models also follow it with a constant scale and shift). The chain
/// becomes one HardSwish node computing the same expression in the same order, with the
/// following `Mul(a)` [`Add(c)`] by scalar constants absorbed as the node's epilogue (`FusedEpilogue.affine`: `a`, `c`).
enum FuseHardSwish {
  static func run(_ g: Graph) -> Graph {
    var g = g
    let index = GraphIndex(g)
    func scalar(_ name: String) -> Float? {
      guard let t = g.constants[name], t.dtype == .float32, t.count == 1 else { return nil }
      return t.floats[0]
    }
    /// The other operand of a binary node, when `name` is one of its two inputs.
    func other(_ n: Node, _ name: String) -> String? {
      guard n.inputs.count == 2, n.inputs[0] != n.inputs[1] else { return nil }
      return n.inputs[0] == name ? n.inputs[1] : (n.inputs[1] == name ? n.inputs[0] : nil)
    }
    func node(_ i: Int?, _ op: String) -> Node? {
      guard let i, g.nodes[i].opType == op, FoldAffine.isDefaultDomain(g.nodes[i]), g.nodes[i].outputs.count == 1 else {
        return nil
      }
      return g.nodes[i]
    }
    var removed = Set<Int>()
    var replaced: [Int: Node] = [:]
    for (di, div) in g.nodes.enumerated() where div.opType == "Div" && FoldAffine.isDefaultDomain(div) {
      guard div.inputs.count == 2, div.outputs.count == 1, scalar(div.inputs[1]) == 6,
        index.uses(div.inputs[0]) == 1, let mi = index.producer(of: div.inputs[0]), let mul = node(mi, "Mul"),
        mul.inputs.count == 2
      else { continue }
      // Mul(x, clip) in either order; clip = Clip(t, 0, 6); t = Add(x, 3) in either order.
      var match: (x: String, ci: Int, ai: Int)? = nil
      for (x, c) in [(mul.inputs[0], mul.inputs[1]), (mul.inputs[1], mul.inputs[0])] {
        guard index.uses(c) == 1, let ci = index.producer(of: c), let clip = node(ci, "Clip"),
          let r = FuseActivation.clampRange(clip, g), r == (0, 6),
          let ai = index.producer(of: clip.inputs[0]), index.uses(clip.inputs[0]) == 1, let add = node(ai, "Add"),
          let three = other(add, x), scalar(three) == 3
        else { continue }
        match = (x, ci, ai)
      }
      guard let (x, ci, ai) = match, ![mi, ci, ai, di].contains(where: removed.contains) else { continue }
      var scale: Float = 1, shift: Float = 0
      var chain = [ai, ci, mi, di]
      if let si = index.soleConsumer(of: div.outputs[0]), let smul = node(si, "Mul"),
        let a = other(smul, div.outputs[0]).flatMap(scalar), !removed.contains(si)
      {
        scale = a
        chain.append(si)
        if let ti = index.soleConsumer(of: smul.outputs[0]), let sadd = node(ti, "Add"),
          let c = other(sadd, smul.outputs[0]).flatMap(scalar), !removed.contains(ti)
        {
          shift = c
          chain.append(ti)
        }
      }
      // The fused node takes the place of the chain's last node: x is defined before the chain
      // and the result's readers come after it.
      let last = chain.removeLast()
      removed.formUnion(chain)
      replaced[last] = Node(
        name: div.name.isEmpty ? "hardswish" : div.name, opType: "HardSwish", inputs: [x],
        outputs: [g.nodes[last].outputs[0]], epilogue: FusedEpilogue(affine: .init(scale: scale, shift: shift)))
    }
    for (i, n) in replaced { g.nodes[i] = n }
    g.nodes = g.nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    return g
  }
}
