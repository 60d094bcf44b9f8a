/// What pruning did, layer by layer.
public struct PruneReport: Sendable, Codable {
  public struct Layer: Sendable, Codable {
    public var name: String
    public var op: String
    public var shape: [Int]
    /// The weight's shape after `--shrink` removed channels (nil when unchanged).
    public var newShape: [Int]?
    /// Zeros before and after, over the original weight count (channels removed by `--shrink`
    /// count as zeros).
    public var weights: Int
    public var zerosBefore: Int
    public var zerosAfter: Int
    /// Why a layer was left alone, or what happened to it besides zeroing.
    public var note: String
    public var pruned: Bool
  }
  public var layers: [Layer] = []
  /// Remarks that are not about one layer (channel groups kept in place, and why).
  public var notes: [String] = []

  public var weights: Int { layers.reduce(0) { $0 + $1.weights } }
  public var zerosBefore: Int { layers.reduce(0) { $0 + $1.zerosBefore } }
  public var zerosAfter: Int { layers.reduce(0) { $0 + $1.zerosAfter } }
}

/// One-shot, post-training pruning of a model's Conv, Gemm and MatMul weights (constants from
/// initializers or `Constant` nodes).
public enum Pruner {
  public static func prune(_ graph: Graph, _ o: PruneOptions) throws(PruneError) -> (Graph, PruneReport) {
    try o.validate()
    var g = o.method.isChannel ? FoldConstantReshapes.run(graph) : graph
    let (layers, skipped) = WeightLayers.find(g, skipFirstLast: o.skipFirstLast)
    guard !layers.isEmpty else {
      let why = skipped.isEmpty
        ? "the model has no Conv, Gemm or MatMul with a constant weight"
        : "\(skipped.count) weighted layers, all left alone (\(skipped.map { "\($0.name): \($0.reason)" }.joined(separator: "; ")))"
      throw PruneError("no eligible layer: \(why)")
    }
    let before = layers.map { l in g.constants[l.weight].map { zeros($0.floats) } ?? 0 }
    var skippedZeros: [Int: Int] = [:]
    for s in skipped where s.node < g.nodes.count && g.nodes[s.node].inputs.count > 1 {
      skippedZeros[s.node] = g.constants[g.nodes[s.node].inputs[1]].map { zeros($0.floats) } ?? 0
    }
    var notes: [String] = []
    var leftDense: [Int: String] = [:]
    var removedFilters: [Int: String] = [:]
    if o.method.isChannel {
      let analysis = ChannelAnalysis.analyse(g)
      // channel-taylor's statistics come from the unpruned model.
      var norms: [Int: [Float]] = [:]
      if o.method == .channelTaylor { norms = try TaylorScores.readerNorms(g, analysis, calibration: o.calibration) }
      let decision = try ChannelPruning.decide(g, analysis, layers, o, readerNorms: norms)
      leftDense = decision.leftDense
      notes += decision.notes
      try ChannelPruning.zero(&g, analysis, decision.removals)
      // A Split's or Slice's parent loses what its parts lose: its filters are the ones removed.
      for (gi, ch) in analysis.withParents(decision.removals) where !ch.isEmpty {
        let group = analysis.groups[gi]
        for p in group.producers {
          let unit = group.unit(ofProducer: p)
          removedFilters[p] = "\(ch.count) of \(group.channels) " + (unit > 1 ? "heads (\(unit) filters each)" : "filters")
        }
      }
      if o.shrink {
        let refused = try Shrink.apply(&g, analysis, decision.removals)
        let shrunk = analysis.withParents(decision.removals.filter { refused[$0.key] == nil })
        for (gi, ch) in shrunk.sorted(by: { $0.key < $1.key }) where !ch.isEmpty {
          guard let why = analysis.groups[gi].changesFunction, !analysis.groups[gi].producers.isEmpty else { continue }
          let names = analysis.groups[gi].producers.map { g.nodes[$0].name }.joined(separator: ", ")
          notes.append("shrunk, function changed: \(names): \(why)")
        }
        for (gi, why) in refused.sorted(by: { $0.key < $1.key }) {
          let producers = analysis.filterRows(gi).map(\.node)
          let names = producers.map { g.nodes[$0].name }.joined(separator: ", ")
          notes.append("not shrunk, pruned in place: \(names): \(why)")
          for p in producers { removedFilters[p]? += ", zeroed in place (not shrunk, see below)" }
        }
      }
    } else {
      leftDense = try WeightPruning.run(&g, layers, o)
      if leftDense.count == layers.count, let first = layers.first, let why = leftDense[first.node] {
        let what = o.method == .stripe ? "stripe pruning" : "pattern \(o.nmPattern)"
        throw PruneError("\(what) fits no eligible layer (\(first.name): \(why))")
      }
    }
    var report = PruneReport(notes: notes)
    let entries = layers.enumerated().map { (i, l) in (l.node, l.name, l.op, l.shape, before[i], "", true) }
      + skipped.map { s in (s.node, s.name, s.op, s.shape, skippedZeros[s.node] ?? 0, s.reason, false) }
    for (node, name, op, shape, zerosBefore, reason, pruned) in entries {
      let count = shape.reduce(1, *)
      let w = g.nodes[node].inputs.count > 1 ? g.constants[g.nodes[node].inputs[1]] : nil
      var note = pruned ? leftDense[node] ?? "" : reason
      if pruned, note.isEmpty, let r = removedFilters[node] { note = r }
      report.layers.append(
        PruneReport.Layer(
          name: name, op: op, shape: shape, newShape: w?.shape == shape ? nil : w?.shape, weights: count,
          zerosBefore: zerosBefore, zerosAfter: count - (w.map { $0.count - zeros($0.floats) } ?? 0), note: note,
          pruned: pruned))
    }
    return (g, report)
  }

  static func zeros(_ f: [Float]) -> Int { f.reduce(0) { $0 + ($1 == 0 ? 1 : 0) } }
}
