/// GELU as exporters before opset 20 write it becomes one Gelu node:
/// exact: `x · 0.5 · (1 + Erf(x / √2))` (or `x · (1/√2)` inside), approximate "tanh":
/// `x · 0.5 · (1 + Tanh(√(2/π) · (x + 0.044715 · Pow(x, 3))))`; the final multiplications by x
/// and 0.5 in any of the orders torch and Hugging Face write them.
enum FuseGelu {
  static func run(_ g: Graph) -> Graph {
    var g = g
    let ix = PatternIndex(g)
    var removed = Set<Int>()
    var replaced: [Int: Node] = [:]
    for (ei, e) in g.nodes.enumerated() where (e.opType == "Erf" || e.opType == "Tanh") && FoldAffine.isDefaultDomain(e) {
      guard e.inputs.count == 1, e.outputs.count == 1 else { continue }
      var x = "", chain: [Int] = []
      let u = e.inputs[0]
      guard ix.uses[u] == 1 else { continue }
      if e.opType == "Erf" {
        if let (i, n) = ix.producer(of: u, "Div"), n.inputs.count == 2, PatternIndex.near(ix.scalar(n.inputs[1]), 1.41421356) {
          (x, chain) = (n.inputs[0], [i])
        } else if let (i, n) = ix.producer(of: u, "Mul"), n.inputs.count == 2 {
          for (a, b) in [(n.inputs[0], n.inputs[1]), (n.inputs[1], n.inputs[0])] where PatternIndex.near(ix.scalar(b), 0.70710678) {
            (x, chain) = (a, [i])
          }
        }
      } else {
        // Tanh(c · (x + 0.044715 · x³)).
        guard let (si, sm) = ix.producer(of: u, "Mul"), sm.inputs.count == 2 else { continue }
        for (s, k) in [(sm.inputs[0], sm.inputs[1]), (sm.inputs[1], sm.inputs[0])]
        where PatternIndex.near(ix.scalar(k), 0.7978845608) && ix.uses[s] == 1 {
          guard let (ai, add) = ix.producer(of: s, "Add"), add.inputs.count == 2 else { continue }
          for (xa, q) in [(add.inputs[0], add.inputs[1]), (add.inputs[1], add.inputs[0])] where ix.uses[q] == 1 {
            guard let (qi, qm) = ix.producer(of: q, "Mul"), qm.inputs.count == 2 else { continue }
            for (cube, k2) in [(qm.inputs[0], qm.inputs[1]), (qm.inputs[1], qm.inputs[0])]
            where PatternIndex.near(ix.scalar(k2), 0.044715) && ix.uses[cube] == 1 {
              guard let (pi, pw) = ix.producer(of: cube, "Pow"), pw.inputs.count == 2, pw.inputs[0] == xa,
                ix.scalar(pw.inputs[1]) == 3
              else { continue }
              (x, chain) = (xa, [pi, qi, ai, si])
            }
          }
        }
      }
      guard !x.isEmpty else { continue }
      chain.append(ei)
      // 1 + f, then the products with x and 0.5.
      guard let (pi, plus) = ix.soleConsumer(of: e.outputs[0], "Add"), PatternIndex.near(ix.scalar(ix.other(plus, e.outputs[0]) ?? ""), 1),
        let (m1i, m1) = ix.soleConsumer(of: plus.outputs[0], "Mul"), let o1 = ix.other(m1, plus.outputs[0])
      else { continue }
      chain += [pi, m1i]
      var out = m1.outputs[0]
      if o1 == x || PatternIndex.near(ix.scalar(o1), 0.5) {
        // (x · (1 + f)) · 0.5, or (0.5 · (1 + f)) · x.
        let needHalf = o1 == x
        guard let (m2i, m2) = ix.soleConsumer(of: out, "Mul"), let o2 = ix.other(m2, out),
          needHalf ? PatternIndex.near(ix.scalar(o2), 0.5) : o2 == x
        else { continue }
        chain.append(m2i)
        out = m2.outputs[0]
      } else if let (hi, h) = ix.producer(of: o1, "Mul"), ix.uses[o1] == 1, h.inputs.count == 2,
        let half = ix.other(h, x), PatternIndex.near(ix.scalar(half), 0.5)
      {
        // (x · 0.5) · (1 + f).
        chain.insert(hi, at: 0)
      } else {
        continue
      }
      guard !chain.contains(where: removed.contains) else { continue }
      let end = chain.max()!
      removed.formUnion(chain.filter { $0 != end })
      replaced[end] = Node(
        name: (e.name.isEmpty ? "gelu" : e.name + "_gelu"), opType: "Gelu", inputs: [x], outputs: [out],
        attributes: ["approximate": .string(e.opType == "Erf" ? "none" : "tanh")])
    }
    PatternIndex.apply(&g, removed: removed, replaced: replaced)
    return g
  }
}
