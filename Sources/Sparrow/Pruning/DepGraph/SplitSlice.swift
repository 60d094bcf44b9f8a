/// A Split or Slice output that takes a window of a group's channels (DepGraph's index maps):
/// channel c of `group` (the part) is channels `window.lowerBound + c·unit ..< + (c+1)·unit` of
/// `parent`. A parent is never scored itself: its removals are the union of its parts', mapped
/// through their windows (`ChannelAnalysis.withParents`), and the Split sizes or Slice bounds
/// are rewritten for what is kept.
struct ChannelSlice: Sendable {
  let group: Int, parent: Int
  /// The Split or Slice node and which of its outputs.
  let node: Int, output: Int
  /// Parent channels (entries of its axis, one per channel: a parent's unit is 1).
  let window: Range<Int>
  /// Parent channels per channel of the part (a head made of a Split output).
  let unit: Int
  /// For a Slice: the entry of its starts/ends that cuts the channels.
  let entry: Int
}

extension ChannelAnalysis {
  /// Whether some Split or Slice takes its channels from group `gi` (which is then decided
  /// through its parts).
  func isParent(_ gi: Int) -> Bool { slices.contains { $0.parent == gi } }

  /// `removals` plus, for every parent, its parts' removals in its own numbering (nested
  /// Splits: the latest first, so a part that is itself a parent is complete when mapped).
  func withParents(_ removals: [Int: [Int]]) -> [Int: [Int]] {
    var out = removals
    for s in slices.reversed() {
      guard let r = out[s.group], !r.isEmpty else { continue }
      let mapped = ChannelEdits.expand(r, unit: s.unit).map { $0 + s.window.lowerBound }
      out[s.parent] = Array(Set(out[s.parent] ?? []).union(mapped)).sorted()
    }
    return out
  }

  /// Groups joined to `gi` through Splits and Slices (parents, parts, their parts), `gi` too.
  func family(_ gi: Int) -> Set<Int> {
    var seen: Set<Int> = [gi], todo = [gi]
    while let x = todo.popLast() {
      for s in slices where s.group == x || s.parent == x {
        for y in [s.group, s.parent] where !seen.contains(y) {
          seen.insert(y)
          todo.append(y)
        }
      }
    }
    return seen
  }

  /// The filters that make each channel of group `gi`: its own producers (whole heads where a
  /// channel spans several filters) and, for a part, its parent's filters in its window.
  /// Layer node -> rows of each channel.
  func filterRows(_ gi: Int) -> [(node: Int, rows: [[Int]])] {
    let group = groups[gi]
    var out: [(node: Int, rows: [[Int]])] = group.producers.map { p in
      let u = group.unit(ofProducer: p)
      return (p, (0..<group.channels).map { c in Array((c * u)..<((c + 1) * u)) })
    }
    for s in slices where s.group == gi && s.parent != gi {
      for (node, rows) in filterRows(s.parent) {
        let mine = (0..<group.channels).map { c in
          (0..<s.unit).flatMap { k -> [Int] in
            let pc = s.window.lowerBound + c * s.unit + k
            return pc < rows.count ? rows[pc] : []
          }
        }
        if let j = out.firstIndex(where: { $0.node == node }) {
          // Q and K of one fused projection in one heads group: both slices' filters.
          for c in 0..<group.channels { out[j].rows[c] += mine[c] }
        } else {
          out.append((node, mine))
        }
      }
    }
    return out
  }
}

extension DepBuilder {
  /// One part of a cut: output `output` of the node, taking `window` of the input's channels.
  struct Cut {
    let tensor: String, parent: String, node: Int, output: Int, window: Range<Int>, entry: Int
  }

  /// Split: along the tracked axis every output is a part of the input's group; along another
  /// axis every output has the input's dimension.
  mutating func split(_ i: Int, _ n: Node) {
    let x = n.inputs.first ?? ""
    guard has(x), let a = axis[x] else { return }
    guard let ax = DepBuilder.negative(WeightLayers.intAttribute(n, "axis", 0), rank: rank[x]) else {
      return blockInputs(n, "split by \(n.label) along an axis of unknown position")
    }
    guard ax == a else {
      if windows[find(x)] != nil { return blockInputs(n, "split by \(n.label) after a Split or Slice of its channels") }
      for y in n.outputs where !y.isEmpty { pass(x, y, n) }
      return
    }
    let c = size(x), outs = n.outputs.count
    var sizes: [Int]
    if let k = constant(n, 1) {
      sizes = k.int64s.map { Int($0) }
    } else if n.inputs.count > 1, !n.inputs[1].isEmpty {
      return blockInputs(n, "split by \(n.label) into sizes that are not constants")
    } else if case .ints(let s)? = n.attributes["split"] {
      sizes = s.map { Int($0) }
    } else {
      // Equal parts (opset 18's num_outputs: the last one smaller when they do not divide).
      let per = (c + outs - 1) / max(outs, 1)
      sizes = (0..<outs).map { k in max(0, min(per, c - k * per)) }
    }
    guard sizes.count == outs, sizes.allSatisfy({ $0 > 0 }), sizes.reduce(0, +) == c else {
      return blockInputs(n, "split by \(n.label) into sizes \(sizes) that do not make its \(c) channels")
    }
    var parts: [Cut] = [], offset = 0
    for (k, (y, s)) in zip(n.outputs, sizes).enumerated() {
      parts.append(Cut(tensor: y, parent: x, node: i, output: k, window: offset..<(offset + s), entry: 0))
      offset += s
    }
    if cut(i, n, parts) { splitWindows[i] = parts.map(\.window) }
  }

  /// Slice by constant starts and ends: along the tracked axis (step 1) its output is a part of
  /// the input's group; along other axes the dimension passes.
  mutating func slice(_ i: Int, _ n: Node) {
    let x = n.inputs.first ?? "", y = n.outputs.first ?? ""
    guard has(x), let a = axis[x] else { return }
    func ints(_ slot: Int, _ key: String) -> [Int]? {
      if g.opset < 10, case .ints(let v)? = n.attributes[key] { return v.map { Int($0) } }
      return constant(n, slot).map { $0.int64s.map { Int($0) } }
    }
    let given = { (slot: Int) in slot < n.inputs.count && !n.inputs[slot].isEmpty }
    guard let starts = ints(1, "starts"), let ends = ints(2, "ends"), starts.count == ends.count,
      g.opset < 10 || ((!given(3) || constant(n, 3) != nil) && (!given(4) || constant(n, 4) != nil))
    else { return blockInputs(n, "sliced by \(n.label) with starts, ends, axes or steps that are not constants") }
    let axes = ints(3, "axes") ?? Array(0..<starts.count)
    guard axes.count == starts.count else { return blockInputs(n, "sliced by \(n.label) with malformed axes") }
    let steps = g.opset < 10 ? nil : constant(n, 4).map { $0.int64s.map { Int($0) } }
    guard let e = axes.firstIndex(where: { DepBuilder.negative($0, rank: rank[x]) == a }) else {
      guard axes.allSatisfy({ DepBuilder.negative($0, rank: rank[x]) != nil }) else {
        return blockInputs(n, "sliced by \(n.label) along axes of unknown position")
      }
      if windows[find(x)] != nil {
        return blockInputs(n, "sliced by \(n.label) after a Split or Slice of its channels")
      }
      pass(x, y, n)
      return
    }
    let step = steps.flatMap { e < $0.count ? $0[e] : nil } ?? 1
    guard step == 1 else {
      return blockInputs(n, "\(n.label) slices the channels with step \(step) (only step 1 is followed)")
    }
    let c = size(x)
    func clamp(_ v: Int) -> Int { min(max(v < 0 ? v + c : v, 0), c) }
    let lo = clamp(starts[e]), hi = clamp(ends[e])
    guard hi > lo else { return blockInputs(n, "\(n.label) slices no channel") }
    _ = cut(i, n, [Cut(tensor: y, parent: x, node: i, output: 0, window: lo..<hi, entry: e)])
  }

  /// Makes `parts` parts of their input's group; false (the inputs blocked, with the reason)
  /// where that cannot be followed.
  mutating func cut(_ i: Int, _ n: Node, _ parts: [Cut]) -> Bool {
    guard let x = parts.first?.parent, let a = axis[x] else { return false }
    guard unit[x] == 1 else {
      blockInputs(n, "\(n.label) cuts channels of \(unit[x] ?? 1) entries each")
      return false
    }
    let root = find(x)
    // From here on the parent's channels are decided through its parts: only other Splits and
    // Slices may read it later.
    for m in g.nodes[(i + 1)...] {
      for (slot, t) in m.inputs.enumerated() where has(t) && find(t) == root {
        guard slot == 0, m.opType == "Split" || m.opType == "Slice" else {
          blockInputs(n, "\(n.label) cuts its channels and \(m.label) reads them whole")
          return false
        }
      }
    }
    for p in parts where windows[root, default: []].contains(where: { $0.overlaps(p.window) }) {
      blockInputs(n, "\(n.label) takes channels \(p.window) that another Split or Slice takes too")
      return false
    }
    for p in parts {
      windows[root, default: []].append(p.window)
      guard !p.tensor.isEmpty else { continue }
      add(p.tensor, channels: p.window.count, axis: a, rank: rank[x], spatialOne: spatialOne.contains(x))
      cuts.append(p)
    }
    return true
  }
}

extension Shrink {
  /// Rewrites the sizes of every Split and the channel bounds of every Slice whose parent loses
  /// channels (`removed`: parent group -> its removed channels).
  static func rewriteCuts(_ g: inout Graph, _ a: ChannelAnalysis, _ removed: [Int: [Int]]) throws(PruneError) {
    var done: Set<Int> = []
    for s in a.slices where !done.contains(s.node) {
      guard let r = removed[s.parent], !r.isEmpty else { continue }
      done.insert(s.node)
      let gone = Set(r)
      func kept(_ w: Range<Int>) -> Int { w.count - w.filter(gone.contains).count }
      let label = g.nodes[s.node].label
      if g.nodes[s.node].opType == "Split" {
        guard let ws = a.splitWindows[s.node] else { continue }
        let sizes = ws.map { Int64(kept($0)) }
        g.nodes[s.node].attributes["num_outputs"] = nil
        if g.opset < 13 {
          g.nodes[s.node].attributes["split"] = .ints(sizes)
        } else {
          guard let t = try? Tensor(shape: [sizes.count], storage: .int64(sizes)) else {
            throw PruneError("\(label): split sizes \(sizes)")
          }
          try ChannelEdits.setInput(&g, s.node, 1, t, suffix: "_split")
        }
        continue
      }
      let lo = s.window.lowerBound - (0..<s.window.lowerBound).filter(gone.contains).count
      let hi = lo + kept(s.window)
      if g.opset < 10 {
        for (key, v) in [("starts", lo), ("ends", hi)] {
          guard case .ints(var list)? = g.nodes[s.node].attributes[key], s.entry < list.count else {
            throw PruneError("\(label): no \(key) entry \(s.entry)")
          }
          list[s.entry] = Int64(v)
          g.nodes[s.node].attributes[key] = .ints(list)
        }
        continue
      }
      for (slot, v) in [(1, lo), (2, hi)] {
        try ChannelEdits.edit(&g, s.node, slot) { (t) throws(PruneError) in
          var list = t.int64s
          guard s.entry < list.count else { throw PruneError("\(label): no entry \(s.entry) in \(list)") }
          list[s.entry] = Int64(v)
          // Starts and ends share one index type with axes and steps: keep it.
          let storage: Tensor.Storage = t.dtype == .int32 ? .int32(list.map { Int32(clamping: $0) }) : .int64(list)
          guard let out = try? Tensor(shape: t.shape, storage: storage) else { throw PruneError("\(label): \(list)") }
          return out
        }
      }
    }
  }
}
