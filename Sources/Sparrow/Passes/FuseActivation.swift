/// A Relu or a Clip with constant bounds right after a Conv, Gemm or MatMul with a constant
/// 2-D weight becomes the kernel's epilogue clamp (`Node.epilogue.clamp`), where the
/// layer's output feeds nothing else; a Gelu after a Gemm or MatMul becomes `epilogue.gelu`.
/// Either may follow a fused bias (FuseLinearBias), nothing else. A Relu after an Add (a
/// residual block's join) becomes the Add's clamp: one pass over the sum instead of two.
enum FuseActivation {
  static func run(_ g: Graph) -> Graph {
    var g = g
    let index = GraphIndex(g)
    var removed = Set<Int>()
    for (ai, act) in g.nodes.enumerated() where act.inputs.first.map({ !$0.isEmpty }) == true {
      let range = clampRange(act, g), gelu = geluForm(act)
      guard range != nil || gelu != nil, let pi = index.producer(of: act.inputs[0]), !removed.contains(pi),
        index.uses(act.inputs[0]) == 1, act.outputs.count == 1
      else { continue }
      var layer = g.nodes[pi]
      if isPlainAdd(layer), act.opType == "Relu" {
        layer.epilogue.clamp = 0...Float.infinity
        layer.outputs = [act.outputs[0]]
        g.nodes[pi] = layer
        removed.insert(ai)
        continue
      }
      guard fusable(layer, g), layer.epilogue.takesActivation else { continue }
      if let range {
        layer.epilogue.clamp = range.0...range.1
      } else {
        guard layer.opType != "Conv" else { continue }
        layer.epilogue.gelu = gelu
      }
      layer.outputs = [act.outputs[0]]
      g.nodes[pi] = layer
      removed.insert(ai)
    }
    g.nodes = g.nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    return g
  }

  /// An Add of the default domain with two inputs, one output and nothing fused yet.
  static func isPlainAdd(_ n: Node) -> Bool {
    n.opType == "Add" && (n.domain.isEmpty || n.domain == "ai.onnx") && n.inputs.count == 2 && n.outputs.count == 1
      && n.epilogue.isEmpty
  }

  static func fusable(_ n: Node, _ g: Graph) -> Bool {
    guard n.domain.isEmpty || n.domain == "ai.onnx", n.outputs.count == 1 else { return false }
    switch n.opType {
    case "Conv": return n.inputs.count >= 2 && g.constants[n.inputs[1]] != nil
    case "Gemm", "MatMul": return n.inputs.count >= 2 && g.constants[n.inputs[1]]?.rank == 2
    default: return false
    }
  }

  /// The form of a Gelu node (opset 20, or what FuseGelu writes).
  static func geluForm(_ n: Node) -> FusedEpilogue.GeluForm? {
    guard n.opType == "Gelu", n.domain.isEmpty || n.domain == "ai.onnx", n.inputs.count == 1 else { return nil }
    switch n.attributes["approximate"] {
    case nil: return .exact
    case .string(let s)? where s == "none": return .exact
    case .string(let s)? where s == "tanh": return .tanh
    default: return nil
    }
  }

  /// The clamp an activation node computes, when its bounds are constants.
  static func clampRange(_ n: Node, _ g: Graph) -> (Float, Float)? {
    guard n.domain.isEmpty || n.domain == "ai.onnx" else { return nil }
    switch n.opType {
    case "Relu": return (0, .infinity)
    case "Clip":
      var lo = -Float.infinity, hi = Float.infinity
      if case .float(let v)? = n.attributes["min"] { lo = v }  // opset < 11
      if case .float(let v)? = n.attributes["max"] { hi = v }
      if n.inputs.count > 1, !n.inputs[1].isEmpty {
        guard let t = g.constants[n.inputs[1]], t.count == 1 else { return nil }
        lo = t.floats[0]
      }
      if n.inputs.count > 2, !n.inputs[2].isEmpty {
        guard let t = g.constants[n.inputs[2]], t.count == 1 else { return nil }
        hi = t.floats[0]
      }
      return lo <= hi ? (lo, hi) : nil
    default: return nil
    }
  }
}
