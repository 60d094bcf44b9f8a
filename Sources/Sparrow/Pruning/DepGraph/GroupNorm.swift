extension DepBuilder {
  /// GroupNormalization (opset 18: scale and bias per norm group; 21: per channel) and
  /// InstanceNormalization (groups of one channel) over the tracked channel axis. The group's
  /// channels become whole norm groups (coarsened by the channels per norm group), so a removal
  /// takes a norm group with its scale and bias and every kept norm group normalises over the
  /// channels it did before: unlike a norm over all channels (a ReduceMean channel norm,
  /// LayerNorm over the pruned axis), the function is unchanged. Where the norm groups do not
  /// divide the channels, or cut across channels of several entries, it is not followed.
  mutating func groupNorm(_ i: Int, _ n: Node) {
    let x = n.inputs.first ?? "", y = n.outputs.first ?? ""
    guard has(x), axis[x] == channelAxis(x) else { return blockInputs(n, "\(n.label) normalises another axis") }
    let c = size(x)
    let groups = n.opType == "InstanceNormalization" ? c : WeightLayers.intAttribute(n, "num_groups", 0)
    guard groups > 0, c % groups == 0 else {
      return blockInputs(n, "\(n.label): \(groups) norm groups do not divide its \(c) channels")
    }
    let k = c / groups, u = unit[x] ?? 1
    guard let scale = constant(n, 1), let bias = constant(n, 2), scale.dtype == .float32, bias.dtype == .float32,
      scale.rank == 1, bias.rank == 1, scale.count == bias.count, scale.count == c || scale.count == groups
    else { return blockInputs(n, "\(n.label): scale and bias are not constants of \(c) or \(groups) values") }
    if k % u == 0 {
      if k > u { coarsen(find(x), by: k / u) }
    } else if u % k != 0 {
      return blockInputs(n, "\(n.label): norm groups of \(k) channels cut channels of \(u) entries")
    }
    pass(x, y, n, role: .groupNorm(node: i, channelsPerGroup: k, perGroupParameters: scale.count != c))
  }
}

extension DepBuilder {
  /// The GroupNorm older exports write (torch before opset 18): Reshape to [N, groups, -1] →
  /// InstanceNormalization over the groups → Reshape back to the input's Shape → per-channel Mul
  /// and Add. The first Reshape makes the norm groups the group's channels (coarsened as for
  /// GroupNormalization) and its group count a shape entry; true when `n` is that Reshape.
  mutating func normGroups(_ i: Int, _ n: Node, _ e: [(value: Int?, at: (node: Int, input: Int, entry: Int)?)]) -> Bool
  {
    let x = n.inputs.first ?? "", y = n.outputs.first ?? ""
    guard has(x), let r = rank[x], r >= 3, axis[x] == channelAxis(x), e.count == 3, e[0].value == nil,
      let groups = e[1].value, groups > 0, e[2].value == -1, let at = e[1].at, !y.isEmpty
    else { return false }
    let c = size(x), u = unit[x] ?? 1
    guard c % groups == 0, (c / groups) % u == 0 else { return false }
    if c / groups > u { coarsen(find(x), by: c / groups / u) }
    add(y, channels: groups, axis: -2, rank: 3)
    union(x, y, at: n, sameEntries: false)
    roles.append((y, .shapeEntry(node: at.node, input: at.input, entry: at.entry)))
    return true
  }

  /// A Reshape of `z` to the Shape of `x0`: followed (its output is `x0`'s dimension) when `z`
  /// is `x0` reshaped and then normalised or mapped element by element, as in the GroupNorm
  /// export above; otherwise `x0`'s channels cannot be removed, since that shape changes.
  mutating func reshapeBack(_ n: Node, to x0: String) {
    let z = n.inputs.first ?? "", y = n.outputs.first ?? ""
    guard reshapesBack(n, x0), has(z), find(z) == find(x0), !y.isEmpty else {
      block(x0, "its shape is taken by \(n.label) for a tensor not known to hold its channels")
      return blockInputs(n)
    }
    add(
      y, channels: channels[find(x0)] ?? 0, axis: axis[x0] ?? -1, unit: unit[x0] ?? 1, rank: rank[x0],
      spatialOne: spatialOne.contains(x0))
    union(x0, y, at: n)
  }

  /// Whether Reshape `n`'s data is `x0` reshaped, then normalised or mapped element by element.
  func reshapesBack(_ n: Node, _ x0: String) -> Bool {
    var t = n.inputs.first ?? ""
    for _ in 0..<8 {
      guard let p = index.producer(of: t) else { return false }
      let m = g.nodes[p]
      if m.opType == "Reshape", m.inputs.first == x0 { return true }
      guard m.opType == "InstanceNormalization" || DependencyGraph.unary.contains(m.opType), let u = m.inputs.first
      else { return false }
      t = u
    }
    return false
  }
}
