/// A learned gate's sub-graph as exporters write it (Feature Boosting and Suppression,
/// `Models/scripts/digits_lib.py` ChannelGate):
/// `s = clamp(Gemm(Flatten(GlobalAveragePool(x)), W, b))`, `t = ReduceMin(TopK(s, k).values)`,
/// `g = Unsqueeze(s · Cast(s >= t), [2, 3])` becomes one `GateScore` node (inputs x, W, b, k;
/// Gemm's attributes; the clamp FuseActivation put on the Gemm), planned as one step
/// (`GateScoreStep`) instead of nine: the gate's cost is mostly per-step overhead. Runs after
/// FuseActivation. Only what is certain without shapes is matched (TopK over the last axis of the
/// 2-D saliency, largest; ReduceMin over axis 1 or -1 with keepdims; Cast to float; Unsqueeze axes
/// [2, 3]; every intermediate read only inside the pattern); the planner checks the shapes and
/// refuses what does not fit with the node named. ONNX has no such op: the node carries
/// `epilogue.gateScore`, so the ONNX writer refuses it.
enum FuseGateScore {
  static func run(_ g: Graph) -> Graph {
    var g = g
    let ix = PatternIndex(g)
    var removed = Set<Int>()
    var replaced: [Int: Node] = [:]
    func ints(_ n: Node, attr: String, input: Int) -> [Int64]? {
      if case .ints(let a)? = n.attributes[attr] { return a }
      if case .int(let a)? = n.attributes[attr] { return [a] }
      if n.inputs.count > input, let t = g.constants[n.inputs[input]], t.dtype == .int64 { return t.int64s }
      return nil
    }
    func int(_ n: Node, _ name: String, _ def: Int64) -> Int64? {
      switch n.attributes[name] {
      case nil: return def
      case .int(let v)?: return v
      default: return nil
      }
    }
    for (ti, topk) in g.nodes.enumerated() where topk.opType == "TopK" && FoldAffine.isDefaultDomain(topk) {
      guard topk.inputs.count == 2, (1...2).contains(topk.outputs.count), !removed.contains(ti),
        let kt = g.constants[topk.inputs[1]], kt.dtype == .int64, kt.count == 1,
        [-1, 1].contains(int(topk, "axis", -1) ?? 0), int(topk, "largest", 1) == 1,
        topk.outputs.count == 1 || topk.outputs[1].isEmpty || ix.uses[topk.outputs[1]] ?? 0 == 0
      else { continue }
      let s = topk.inputs[0], values = topk.outputs[0]
      guard ix.uses[s] == 3, let (mi, rmin) = ix.soleConsumer(of: values, "ReduceMin"),
        rmin.inputs[0] == values, [[1], [-1]].contains(ints(rmin, attr: "axes", input: 1) ?? []),
        int(rmin, "keepdims", 1) == 1,
        let (ci, cmp) = ix.soleConsumer(of: rmin.outputs[0], "GreaterOrEqual"), cmp.inputs == [s, rmin.outputs[0]],
        let (ki, cast) = ix.soleConsumer(of: cmp.outputs[0], "Cast"), int(cast, "to", 0) == 1,
        let (ui, mul) = ix.soleConsumer(of: cast.outputs[0], "Mul"), ix.other(mul, cast.outputs[0]) == s,
        let (qi, unsq) = ix.soleConsumer(of: mul.outputs[0], "Unsqueeze"), unsq.inputs[0] == mul.outputs[0],
        ints(unsq, attr: "axes", input: 1) == [2, 3],
        let (gi, gemm) = ix.producer(of: s, "Gemm"), (2...3).contains(gemm.inputs.count),
        g.constants[gemm.inputs[1]]?.rank == 2, gemm.inputs.count < 3 || g.constants[gemm.inputs[2]] != nil,
        int(gemm, "transA", 0) == 0, gemm.epilogue.affine == nil, gemm.epilogue.bias == nil,
        gemm.epilogue.gelu == nil, gemm.epilogue.learnedGate == nil,
        ix.uses[gemm.inputs[0]] == 1, let (fi, flat) = ix.producer(of: gemm.inputs[0], "Flatten"),
        int(flat, "axis", 1) == 1, ix.uses[flat.inputs[0]] == 1,
        let (pi, pool) = ix.producer(of: flat.inputs[0], "GlobalAveragePool")
      else { continue }
      let chain = [pi, fi, gi, ti, mi, ci, ki, ui, qi]
      guard !chain.contains(where: removed.contains) else { continue }
      var node = Node(
        name: topk.name.isEmpty ? "gate_score" : topk.name + "_gate_score", opType: "GateScore",
        inputs: [pool.inputs[0], gemm.inputs[1], gemm.inputs.count > 2 ? gemm.inputs[2] : "", topk.inputs[1]],
        outputs: [unsq.outputs[0]], attributes: gemm.attributes)
      node.epilogue.clamp = gemm.epilogue.clamp
      node.epilogue.gateScore = true
      // The node takes the Unsqueeze's place: after everything the chain read.
      removed.formUnion(chain.dropLast())
      replaced[qi] = node
    }
    PatternIndex.apply(&g, removed: removed, replaced: replaced)
    return g
  }
}
