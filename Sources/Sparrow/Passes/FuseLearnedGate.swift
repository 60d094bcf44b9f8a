/// `Mul(conv(x), g)` where `g` is computed at run time and the convolution (groups = 1, a
/// constant 4-D weight) feeds only the Mul becomes one Conv node whose epilogue multiplies its
/// output by `g` per channel (`FusedEpilogue.learnedGate`: `g` is the node's input at that
/// index). Learned gates (GAP → FC → top-k mask, as Feature Boosting and Suppression exports)
/// look like this; in the gate's `model` mode the channels `g` zeroes are then never computed.
/// The fused node takes the Mul's place (after `g` is computed). Shapes are unknown here: the
/// planner plans it as the two ops again when `g` is not `[N or 1, M, 1, 1]`.
enum FuseLearnedGate {
  static func run(_ g: Graph) -> Graph {
    var g = g
    let index = GraphIndex(g)
    var removed = Set<Int>()
    for (mi, mul) in g.nodes.enumerated() where mul.opType == "Mul" && FoldAffine.isDefaultDomain(mul) {
      guard mul.inputs.count == 2, mul.outputs.count == 1, mul.inputs[0] != mul.inputs[1],
        mul.inputs.allSatisfy({ !$0.isEmpty && g.constants[$0] == nil })
      else { continue }
      for (a, b) in [(0, 1), (1, 0)] {
        guard let ci = index.producer(of: mul.inputs[a]), !removed.contains(ci), index.uses(mul.inputs[a]) == 1,
          fusable(g.nodes[ci], g)
        else { continue }
        var fused = g.nodes[ci]
        while fused.inputs.count < 3 { fused.inputs.append("") }
        fused.epilogue.learnedGate = fused.inputs.count
        fused.inputs.append(mul.inputs[b])
        fused.outputs = mul.outputs
        g.nodes[mi] = fused
        removed.insert(ci)
        break
      }
    }
    g.nodes = g.nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    return g
  }

  static func fusable(_ n: Node, _ g: Graph) -> Bool {
    guard n.opType == "Conv", FoldAffine.isDefaultDomain(n), n.outputs.count == 1, n.epilogue.learnedGate == nil,
      (2...3).contains(n.inputs.count), g.constants[n.inputs[1]]?.rank == 4
    else { return false }
    if case .int(let groups)? = n.attributes["group"], groups != 1 { return false }
    return true
  }

  /// A fused node as the two nodes it came from: the convolution writing `hidden`, then the Mul.
  static func unfused(_ n: Node, hidden: String) -> [Node] {
    guard let slot = n.epilogue.learnedGate else { return [n] }
    var conv = n
    conv.inputs = Array(n.inputs.prefix(slot))
    conv.epilogue.learnedGate = nil
    conv.outputs = [hidden]
    let mul = Node(
      name: n.name.isEmpty ? "" : n.name + "/gate", opType: "Mul", inputs: [hidden, n.inputs[slot]], outputs: n.outputs)
    return [conv, mul]
  }
}
