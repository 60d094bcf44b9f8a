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
