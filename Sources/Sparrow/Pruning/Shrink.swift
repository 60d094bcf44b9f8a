/// `--shrink`: removes pruned channels physically from a model pruned in place, so that the
/// result computes what the in-place model computes with smaller dense layers. A group's
/// channels go from every layer that makes them (filters, biases), every layer they pass
/// through (depthwise convolutions, BatchNorm, per-channel constants) and every layer that reads
/// them (input channels). A removed channel that reaches a reader as a nonzero constant is
/// folded into that reader's bias (Conv without padding, Gemm). Groups where that cannot be
/// done exactly stay as they are (pruned in place), with the reason.
enum Shrink {
  /// Returns the groups left in place, with why.
  static func apply(_ g: inout Graph, _ a: ChannelAnalysis, _ removals: [Int: [Int]]) throws(PruneError) -> [Int: String] {
    var refused: [Int: String] = [:]
    var todo: [Int: [Int]] = [:]
    for (gi, channels) in removals where !channels.isEmpty {
      if let why = a.groups[gi].blocked { refused[gi] = why } else { todo[gi] = channels }
    }
    // Behind a Split or Slice a refusal reaches the whole family (parent and parts): the checks
    // run again without it.
    var folds: [(node: Int, channels: [Int], values: [Float])] = []
    while true {
      let full = a.withParents(todo)
      let (found, mine) = try check(g, a, full)
      var linked = found.keys.filter { a.family($0).count > 1 }
      if !linked.contains(where: { a.family($0).contains { todo[$0] != nil } }) { linked = [] }
      guard !linked.isEmpty else {
        for (gi, why) in found {
          refused[gi] = why
          todo[gi] = nil
        }
        folds = mine.map { ($0.node, $0.channels, $0.values) }
        break
      }
      for gi in linked {
        for f in a.family(gi) where todo[f] != nil {
          refused[f] = f == gi ? found[gi] : "\(found[gi] ?? "") (through a Split or Slice)"
          todo[f] = nil
        }
      }
    }
    todo = a.withParents(todo)
    for f in folds where f.values.contains(where: { $0 != 0 }) { try fold(&g, f.node, f.channels, f.values) }
    try cut(&g, a, todo)
    return refused
  }

  /// Refusals by the values removed channels carry to their readers, and the folds that remove
  /// the others exactly.
  static func check(
    _ g: Graph, _ a: ChannelAnalysis, _ todo: [Int: [Int]]
  ) throws(PruneError) -> ([Int: String], [(group: Int, node: Int, channels: [Int], values: [Float])]) {
    var refused: [Int: String] = [:]
    let values = ChannelValues.propagate(g, a, removals: todo)
    var folds: [(group: Int, node: Int, channels: [Int], values: [Float])] = []
    for (gi, channels) in todo.sorted(by: { $0.key < $1.key }) {
      let group = a.groups[gi]
      var why: String?
      var mine: [(group: Int, node: Int, channels: [Int], values: [Float])] = []
      readers: for (role, unit) in zip(group.roles, group.units) {
        guard case .consumer(let n, let via, let offset) = role else { continue }
        let node = g.nodes[n]
        let vals = values[via] ?? channels.map { _ in nil }
        var known: [Float] = []
        for (j, v) in vals.enumerated() {
          // Where the group changes the function anyway (a norm over its channels), a removed
          // channel's value is not kept: the shrunk model is DepGraph's, not the in-place one.
          guard let v else {
            if group.changesFunction != nil {
              known.append(0)
              continue
            }
            why = "channel \(channels[j]) reaches \(node.label) with a value that depends on the input"
            break readers
          }
          if v != 0, let r = foldRefusal(node, g) {
            if group.changesFunction != nil {
              known.append(0)
              continue
            }
            why = "channel \(channels[j]) reaches \(node.label) as the constant \(v), and \(r)"
            break readers
          }
          known.append(v)
        }
        mine.append(
          (gi, n, ChannelEdits.expand(channels, unit: unit).map { $0 + offset }, known.flatMap { [Float](repeating: $0, count: unit) }))
      }
      if let why {
        refused[gi] = why
      } else {
        folds += mine
      }
    }
    return (refused, folds)
  }

  /// Removes the channels of `todo` (parents included) from every constant of every role.
  static func cut(_ g: inout Graph, _ a: ChannelAnalysis, _ todo: [Int: [Int]]) throws(PruneError) {
    // Removals gathered per constant and axis first: behind a Concat several groups cut the same
    // axis of one reader, each at its own offset in the original numbering.
    struct Cut: Hashable { let node: Int, slot: Int, axis: Int }
    var cuts: [Cut: Set<Int>] = [:]
    for (gi, channels) in todo {
      let group = a.groups[gi]
      for (role, unit) in zip(group.roles, group.units) {
        for s in ChannelEdits.slots(role, g) {
          cuts[Cut(node: s.node, slot: s.slot, axis: s.axis), default: []].formUnion(s.entries(channels, unit: unit))
        }
        let kept = (group.channels - channels.count) * unit
        switch role {
        case .depthwise(let n): g.nodes[n].attributes["group"] = .int(Int64(kept))
        case .groupNorm(let n, let k, _) where g.nodes[n].opType == "GroupNormalization":
          g.nodes[n].attributes["num_groups"] = .int(Int64(kept / max(k, 1)))
        case .shapeEntry(let n, let input, let entry):
          let label = g.nodes[n].label
          try ChannelEdits.edit(&g, n, input) { (t) throws(PruneError) in
            var s = t.int64s
            guard entry < s.count else { throw PruneError("\(label): shape \(s) has no entry \(entry)") }
            s[entry] = Int64(kept)
            guard let out = try? Tensor(shape: t.shape, storage: .int64(s)) else { throw PruneError("shape \(s)") }
            return out
          }
        default: break
        }
      }
    }
    for (cut, removed) in cuts.sorted(by: { ($0.key.node, $0.key.slot, $0.key.axis) < ($1.key.node, $1.key.slot, $1.key.axis) }) {
      try ChannelEdits.edit(&g, cut.node, cut.slot) { (t) throws(PruneError) in
        guard cut.axis < t.rank else { throw PruneError("axis \(cut.axis) outside a tensor of shape \(t.shape)") }
        return try ChannelEdits.gathered(t, axis: cut.axis, keep: (0..<t.shape[cut.axis]).filter { !removed.contains($0) })
      }
    }
    try rewriteCuts(&g, a, todo)
  }

  /// Why `reader` cannot absorb a constant input channel into its bias (nil: it can).
  static func foldRefusal(_ reader: Node, _ g: Graph) -> String? {
    switch reader.opType {
    case "Conv":
      return ChannelValues.padsAreZero(reader) ? nil : "its zero padding makes that position-dependent"
    case "Gemm":
      guard reader.inputs.count > 2, !reader.inputs[2].isEmpty else { return nil }
      guard let c = g.constants[reader.inputs[2]], let b = g.constants[reader.inputs[1]], b.rank == 2 else {
        return "its C is not a constant"
      }
      let out = WeightLayers.intAttribute(reader, "transB", 0) != 0 ? b.shape[0] : b.shape[1]
      if c.count > 1, c.shape.last != out { return "its C of shape \(c.shape) is not per output channel" }
      return ChannelValues.float(reader, "beta", 1) == 0 ? "its beta is 0" : nil
    case "MatMul": return "MatMul has no bias to fold it into"
    default: return "\(reader.opType) spreads it unevenly at the borders"
    }
  }

  /// Adds what the removed constant channels contributed to `reader`'s output to its bias.
  static func fold(_ g: inout Graph, _ reader: Int, _ channels: [Int], _ values: [Float]) throws(PruneError) {
    let n = g.nodes[reader]
    guard let w = ChannelEdits.constant(g, reader, 1) else { return }
    let f = w.floats
    let bias = ChannelEdits.constant(g, reader, 2)
    do {
      if n.opType == "Conv" {
        let out = w.shape[0], cin = w.shape[1], per = w.count / max(out * cin, 1)
        var b = bias?.floats ?? [Float](repeating: 0, count: out)
        for o in 0..<out {
          for (c, v) in zip(channels, values) where v != 0 {
            b[o] += v * f[((o * cin + c) * per)..<((o * cin + c + 1) * per)].reduce(0, +)
          }
        }
        try ChannelEdits.setInput(&g, reader, 2, try Tensor(shape: [out], floats: b))
        return
      }
      // Gemm: Y = alpha·A·B' + beta·C, so C gains alpha/beta · Σ v·B'[c, o].
      let transB = WeightLayers.intAttribute(n, "transB", 0) != 0
      let out = transB ? w.shape[0] : w.shape[1], k = transB ? w.shape[1] : w.shape[0]
      let alpha = ChannelValues.float(n, "alpha", 1)
      var beta = ChannelValues.float(n, "beta", 1)
      if bias == nil {
        beta = 1
        g.nodes[reader].attributes["beta"] = .float(1)
      }
      var term = [Float](repeating: 0, count: out)
      for o in 0..<out {
        for (c, v) in zip(channels, values) where v != 0 { term[o] += alpha * v * (transB ? f[o * k + c] : f[c * out + o]) / beta }
      }
      guard let cv = bias, cv.count > 1 else {
        let base = bias?.floats.first ?? 0
        try ChannelEdits.setInput(&g, reader, 2, try Tensor(shape: [out], floats: term.map { $0 + base }))
        return
      }
      var cf = cv.floats
      for i in cf.indices { cf[i] += term[i % out] }
      try ChannelEdits.setInput(&g, reader, 2, try Tensor(shape: cv.shape, floats: cf))
    } catch {
      throw PruneError("\(n.label): folding removed channels into the bias: \(error)")
    }
  }
}
