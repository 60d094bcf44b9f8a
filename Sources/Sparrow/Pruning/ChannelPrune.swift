/// Filter pruning decided per channel group, so that coupled layers (both sides of a residual
/// Add, a squeeze-and-excitation gate and the tensor it scales) lose the same channels: a
/// channel's importance is the mean, over the group's filter-producing layers, of each layer's
/// score divided by that layer's mean score. A group with one producer ranks its filters by
/// the plain score. A sparsity that would empty a group is an error unless `keepOnePerGroup`
/// keeps one channel of it.
enum ChannelPruning {
  struct Decision {
    /// Group → removed channels, ascending.
    var removals: [Int: [Int]] = [:]
    /// Layer node → why its filters stay.
    var leftDense: [Int: String] = [:]
    /// Groups the sparsity would have emptied, which keep one channel (for the report).
    var notes: [String] = []
  }

  /// `readerNorms`: for `channel-taylor`, each reading layer's input-channel norms over the
  /// calibration inputs (`TaylorScores`).
  static func decide(
    _ g: Graph, _ a: ChannelAnalysis, _ layers: [WeightLayer], _ o: PruneOptions, readerNorms: [Int: [Float]] = [:]
  ) throws(PruneError) -> Decision {
    var d = Decision()
    let layerAt = Dictionary(layers.map { ($0.node, $0) }, uniquingKeysWith: { first, _ in first })
    var candidates: [(group: Int, scores: [Float])] = []
    groups: for (gi, group) in a.groups.enumerated() where !a.isParent(gi) {
      // A Split or Slice output is made by its parent's filters in its window.
      let sources = a.filterRows(gi)
      let eligible = sources.map(\.node).filter { layerAt[$0] != nil }
      guard !eligible.isEmpty else { continue }
      if let other = sources.map(\.node).first(where: { layerAt[$0] == nil }) {
        for p in eligible { d.leftDense[p] = "shares its output channels with \(g.nodes[other].label), which is left dense" }
        continue
      }
      if o.onlyShrinkable, let why = group.blocked {
        for p in eligible { d.leftDense[p] = "not shrinkable (--groups shrinkable): \(why)" }
        continue
      }
      guard !group.reachesOutput else {
        for p in eligible { d.leftDense[p] = "its output channels are model outputs" }
        continue
      }
      guard group.channels >= 2 else {
        for p in eligible { d.leftDense[p] = "a single output channel" }
        continue
      }
      if o.method == .channelTaylor {
        guard let s = TaylorScores.scores(g, group, norms: readerNorms) else {
          for p in eligible { d.leftDense[p] = "channel-taylor: no layer reads its channels (the score is the readers')" }
          continue
        }
        candidates.append((gi, ChannelScores.normalised(s)))
        continue
      }
      var sum = [Float](repeating: 0, count: group.channels)
      for (p, channelRows) in sources {
        guard let l = layerAt[p], let w = g.constants[l.weight], channelRows.joined().allSatisfy({ $0 < l.rows }) else {
          for q in eligible { d.leftDense[q] = "filters do not match the \(group.channels) channels of the group" }
          continue groups
        }
        // A channel of several filters (an attention head) scores the sum of its filters'.
        let rows = ChannelScores.scores(o.method, l.matrix(w), rows: l.rows, cols: l.cols)
        let s = ChannelScores.normalised(channelRows.map { r in r.reduce(0) { $0 + rows[$1] } })
        for c in 0..<group.channels { sum[c] += s[c] / Float(sources.count) }
      }
      candidates.append((gi, sum))
    }
    switch o.scope {
    case .layer:
      for (gi, s) in candidates {
        let want = WeightMethods.count(o.target, of: s.count), k = min(s.count - 1, want)
        if want > k {
          // Removing a whole group would cut the network: an error, unless the caller (a sweep to
          // high sparsities) asked for one channel to stay, which the report then says.
          let names = a.filterRows(gi).map { g.nodes[$0.node].name }.joined(separator: ", ")
          guard o.keepOnePerGroup else {
            throw PruneError(
              "sparsity \(o.target) would remove all \(s.count) channels of the group of \(names): "
                + "use a lower --sparsity, or --keep-one-per-group to keep one channel of such groups")
          }
          d.notes.append(
            "sparsity \(o.target) would remove all \(s.count) channels of the group of \(names): 1 kept")
        }
        d.removals[gi] = WeightMethods.smallest(s, count: k).sorted()
      }
    case .global:
      var keys: [Float] = [], owner: [(group: Int, channel: Int)] = []
      for (gi, s) in candidates {
        keys += s
        owner += s.indices.map { (gi, $0) }
      }
      let target = WeightMethods.count(o.target, of: keys.count)
      var picked = 0
      for i in WeightMethods.smallest(keys, count: keys.count) where picked < target {
        let (gi, c) = owner[i]
        if d.removals[gi, default: []].count < a.groups[gi].channels - 1 {
          d.removals[gi, default: []].append(c)
          picked += 1
        }
      }
      for gi in d.removals.keys { d.removals[gi]?.sort() }
    }
    return d
  }

  /// Prunes in place: zeroes the removed channels' filters and biases, the depthwise filters
  /// and BatchNorm scale and shift they pass through, and additive per-channel constants, so
  /// that the channel is a constant (zero when nothing adds to it) for every input.
  static func zero(_ g: inout Graph, _ a: ChannelAnalysis, _ removals: [Int: [Int]]) throws(PruneError) {
    for (gi, channels) in a.withParents(removals).sorted(by: { $0.key < $1.key }) where !channels.isEmpty {
      let group = a.groups[gi]
      for (role, unit) in zip(group.roles, group.units) {
        for s in ChannelEdits.slots(role, g) where s.zeroed {
          let entries = s.entries(channels, unit: unit)
          try ChannelEdits.edit(&g, s.node, s.slot) { (t) throws(PruneError) in
            try ChannelEdits.zeroed(t, axis: s.axis, entries)
          }
        }
      }
    }
  }
}
