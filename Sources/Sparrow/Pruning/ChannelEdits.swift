/// The constants a channel role touches, and edits on them that never change a constant that
/// another node also reads (such a constant is copied under a fresh name first).
enum ChannelEdits {
  /// One per-channel slot of a role: input `slot` of the node, channel axis `axis` of that
  /// constant, the group's channels starting at `offset` along it; `zeroed` when pruning in
  /// place zeroes it (filters, biases, BatchNorm scale and shift, additive constants; not the
  /// inputs of consumers, nor BatchNorm's mean and variance).
  struct Slot {
    let node: Int, slot: Int, axis: Int, zeroed: Bool
    var offset = 0
    /// Group entries per entry of this constant (a norm group's one scale for its channels).
    var divisor = 1

    /// The constant's entries of group channels `channels` whose role has `unit` entries each.
    func entries(_ channels: [Int], unit: Int) -> [Int] {
      ChannelEdits.expand(channels, unit: max(unit / divisor, 1)).map { $0 + offset }
    }
  }

  static func slots(_ role: ChannelRole, _ g: Graph) -> [Slot] {
    func attr(_ n: Int, _ k: String) -> Int { WeightLayers.intAttribute(g.nodes[n], k, 0) }
    switch role {
    case .producer(let n):
      switch g.nodes[n].opType {
      case "Conv": return [Slot(node: n, slot: 1, axis: 0, zeroed: true), Slot(node: n, slot: 2, axis: 0, zeroed: true)]
      case "ConvTranspose":
        return [Slot(node: n, slot: 1, axis: 1, zeroed: true), Slot(node: n, slot: 2, axis: 0, zeroed: true)]
      case "Gemm":
        var out = [Slot(node: n, slot: 1, axis: attr(n, "transB") != 0 ? 0 : 1, zeroed: true)]
        if let c = constant(g, n, 2), c.count > 1 { out.append(Slot(node: n, slot: 2, axis: c.rank - 1, zeroed: true)) }
        return out
      default: return [Slot(node: n, slot: 1, axis: 1, zeroed: true)]
      }
    case .depthwise(let n):
      return [Slot(node: n, slot: 1, axis: 0, zeroed: true), Slot(node: n, slot: 2, axis: 0, zeroed: true)]
    case .batchNorm(let n):
      return (1..<5).map { Slot(node: n, slot: $0, axis: 0, zeroed: $0 <= 2) }
    case .groupNorm(let n, let k, let perGroup):
      return (1..<3).map { Slot(node: n, slot: $0, axis: 0, zeroed: true, divisor: perGroup ? k : 1) }
    case .constant(let n, let input, let axis, let additive):
      return [Slot(node: n, slot: input, axis: axis, zeroed: additive)]
    case .shapeEntry:
      return []  // its shape entry is rewritten by Shrink, not sliced
    case .consumer(let n, _, let offset):
      switch g.nodes[n].opType {
      case "Conv": return [Slot(node: n, slot: 1, axis: 1, zeroed: false, offset: offset)]
      case "Gemm": return [Slot(node: n, slot: 1, axis: attr(n, "transB") != 0 ? 1 : 0, zeroed: false, offset: offset)]
      default: return [Slot(node: n, slot: 1, axis: 0, zeroed: false, offset: offset)]  // ConvTranspose, MatMul
      }
    }
  }

  /// The entries of group channels `channels` along an axis holding `unit` entries per channel.
  static func expand(_ channels: [Int], unit: Int) -> [Int] {
    unit == 1 ? channels : channels.flatMap { c in (c * unit)..<((c + 1) * unit) }
  }

  static func constant(_ g: Graph, _ node: Int, _ slot: Int) -> Tensor? {
    let n = g.nodes[node]
    return slot < n.inputs.count && !n.inputs[slot].isEmpty ? g.constants[n.inputs[slot]] : nil
  }

  /// Replaces the constant at `slot` of `node` by `edit(old)`, copying it under a fresh name
  /// when something else reads it too. No-op when the slot holds no constant.
  static func edit(
    _ g: inout Graph, _ node: Int, _ slot: Int, _ edit: (Tensor) throws(PruneError) -> Tensor
  ) throws(PruneError) {
    guard let old = constant(g, node, slot) else { return }
    let name = g.nodes[node].inputs[slot]
    let new = try edit(old)
    var readers = g.nodes.reduce(0) { $0 + $1.inputs.filter { $0 == name }.count }
    readers += g.outputs.filter { $0.name == name }.count
    if readers > 1 {
      let fresh = freshName(name + "_pruned", in: g)
      g.constants[fresh] = new
      g.nodes[node].inputs[slot] = fresh
    } else {
      g.constants[name] = new
    }
  }

  /// Sets a constant input that may be absent (a bias), naming it after the node.
  static func setInput(
    _ g: inout Graph, _ node: Int, _ slot: Int, _ t: Tensor, suffix: String = "_bias"
  ) throws(PruneError) {
    if constant(g, node, slot) != nil {
      try edit(&g, node, slot) { _ in t }
      return
    }
    let name = freshName(g.nodes[node].name + suffix, in: g)
    g.constants[name] = t
    while g.nodes[node].inputs.count <= slot { g.nodes[node].inputs.append("") }
    g.nodes[node].inputs[slot] = name
  }

  /// A name no constant, node output or graph input uses yet.
  static func freshName(_ base: String, in g: Graph) -> String {
    var taken = Set(g.constants.keys).union(g.inputs.map(\.name))
    for n in g.nodes { taken.formUnion(n.outputs) }
    var name = base, i = 1
    while taken.contains(name) {
      name = "\(base)_\(i)"
      i += 1
    }
    return name
  }

  /// (outer, axis size, inner) of `shape` around `axis`.
  static func split(_ shape: [Int], _ axis: Int) -> (Int, Int, Int) {
    (shape[..<axis].reduce(1, *), shape[axis], shape[(axis + 1)...].reduce(1, *))
  }

  /// `t` with the entries at `channels` along `axis` set to zero.
  static func zeroed(_ t: Tensor, axis: Int, _ channels: [Int]) throws(PruneError) -> Tensor {
    guard axis >= 0, axis < t.rank else { throw PruneError("axis \(axis) outside a tensor of shape \(t.shape)") }
    let (outer, size, inner) = split(t.shape, axis)
    var f = t.floats
    for c in channels where c < size {
      for o in 0..<outer { for j in 0..<inner { f[(o * size + c) * inner + j] = 0 } }
    }
    do { return try Tensor(shape: t.shape, floats: f) } catch { throw PruneError(error.message) }
  }

  /// `t` with only the entries at `keep` along `axis`.
  static func gathered(_ t: Tensor, axis: Int, keep: [Int]) throws(PruneError) -> Tensor {
    guard axis >= 0, axis < t.rank, keep.allSatisfy({ $0 >= 0 && $0 < t.shape[axis] }) else {
      throw PruneError("cannot keep channels of axis \(axis) of a tensor of shape \(t.shape)")
    }
    let (outer, size, inner) = split(t.shape, axis)
    let f = t.floats
    var out: [Float] = []
    out.reserveCapacity(outer * keep.count * inner)
    for o in 0..<outer { for c in keep { out += f[((o * size + c) * inner)..<((o * size + c + 1) * inner)] } }
    var shape = t.shape
    shape[axis] = keep.count
    do { return try Tensor(shape: shape, floats: out) } catch { throw PruneError(error.message) }
  }
}
