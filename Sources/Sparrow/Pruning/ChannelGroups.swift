/// What a node does with the channels of a group.
enum ChannelRole: Sendable, Equatable {
  /// Its output channels are the group's (Conv, ConvTranspose, Gemm, MatMul): a filter each.
  case producer(node: Int)
  /// A depthwise convolution inside the group: one filter per channel, in and out.
  case depthwise(node: Int)
  /// A BatchNormalization inside the group: four parameters per channel.
  case batchNorm(node: Int)
  /// A per-channel constant operand of an element-wise op; `axis` is the channel axis in the
  /// constant's own shape; `additive` for Add/Sub (zeroed with the channel), not for Mul/Div.
  case constant(node: Int, input: Int, axis: Int, additive: Bool)
  /// Reads the group's channels as its input channels (Conv, ConvTranspose, Gemm, MatMul):
  /// `via` is the group's tensor whose values it sees, `offset` where the group's channels start
  /// among its inputs (nonzero behind a Concat).
  case consumer(node: Int, via: String, offset: Int)
}

/// Tensors that share one channel index space: a filter's output channel c is channel c of
/// every tensor of its group, through BatchNorm, element-wise ops (residual Adds, squeeze-and-
/// excitation Muls), pools, Resize, depthwise convolutions and Flatten, up to the layers that
/// read the channels (directly, or behind a channel Concat that only such layers read).
/// Removing channel c of a group removes it everywhere in the group.
struct ChannelGroup: Sendable {
  var channels: Int
  var tensors: [String]
  var roles: [ChannelRole]
  /// Why the group's channels cannot be removed physically (nil: they can).
  var blocked: String?
  /// Some tensor of the group is a model output: its channels are the model's, not to prune.
  var reachesOutput = false

  var producers: [Int] {
    roles.compactMap { if case .producer(let n) = $0 { return n } else { return nil } }
  }
}

/// The channel groups of a graph (NCHW, or `[N, features]` after Flatten/Gemm: the channel
/// axis is always 1).
struct ChannelAnalysis: Sendable {
  var groups: [ChannelGroup]
  var groupOf: [String: Int]

  static let unary: Set<String> = [
    "Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Clip", "Identity", "Elu", "Softplus",
    "Neg", "Abs", "Exp", "Dropout",
  ]

  static func analyse(_ g: Graph) -> ChannelAnalysis {
    var b = GroupBuilder(g: g)
    for (i, n) in g.nodes.enumerated() { b.visit(i, n) }
    for o in g.outputs where b.has(o.name) {
      b.block(o.name, "reaches model output '\(o.name)'")
      b.outputs.insert(o.name)
    }
    return b.finish()
  }
}

/// Union-find over tensor names, with the channel count and block reason kept at each root.
private struct GroupBuilder {
  let g: Graph
  var parent: [String: String] = [:]
  var channels: [String: Int] = [:]
  var blocked: [String: String] = [:]
  var rank: [String: Int] = [:]
  var spatialOne: Set<String> = []
  var roles: [(String, ChannelRole)] = []
  var order: [String] = []
  var outputs: Set<String> = []

  func has(_ t: String) -> Bool { parent[t] != nil }

  mutating func find(_ t: String) -> String {
    var r = t
    while let p = parent[r], p != r { r = p }
    var x = t
    while let p = parent[x], p != r { parent[x] = r; x = p }
    return r
  }

  mutating func add(_ t: String, channels c: Int, rank r: Int?, spatialOne one: Bool = false) {
    guard !t.isEmpty, !has(t) else { return }
    parent[t] = t
    channels[t] = c
    order.append(t)
    if let r { rank[t] = r }
    if one { spatialOne.insert(t) }
  }

  mutating func block(_ t: String, _ reason: String) {
    guard has(t) else { return }
    let r = find(t)
    if blocked[r] == nil { blocked[r] = reason }
  }

  mutating func union(_ a: String, _ b: String, at node: Node) {
    let ra = find(a), rb = find(b)
    guard ra != rb else { return }
    parent[rb] = ra
    if blocked[ra] == nil, let why = blocked[rb] { blocked[ra] = why }
    if channels[ra] != channels[rb] {
      block(ra, "\(node.label) joins \(channels[ra] ?? 0) and \(channels[rb] ?? 0) channels")
    }
  }

  /// Blocks the groups of every input, for ops whose channel layout is not followed.
  mutating func blockInputs(_ n: Node, _ why: String? = nil) {
    for t in n.inputs where has(t) { block(t, why ?? "feeds \(n.label), which is not followed channel by channel") }
  }

  func constant(_ n: Node, _ slot: Int) -> Tensor? {
    slot < n.inputs.count ? g.constants[n.inputs[slot]] : nil
  }

  func absentOrConstant(_ n: Node, _ slots: Range<Int>) -> Bool {
    slots.allSatisfy { $0 >= n.inputs.count || n.inputs[$0].isEmpty || g.constants[n.inputs[$0]] != nil }
  }

  /// `x` read as input channels by `node`, which expects `c` channels at rank `r`.
  mutating func consume(_ x: String, channels c: Int, rank r: Int, node i: Int) {
    guard has(x) else { return }
    if rank[x] != r || channels[find(x)] != c {
      block(x, "\(g.nodes[i].label) reads it with a shape Sparrow does not match")
    } else {
      roles.append((x, .consumer(node: i, via: x, offset: 0)))
    }
  }

  mutating func produce(_ y: String, channels c: Int, rank r: Int?, node i: Int) {
    add(y, channels: c, rank: r)
    roles.append((y, .producer(node: i)))
    if r == nil { block(y, "\(g.nodes[i].label): output layout unknown (input rank not known)") }
  }

  /// `y` has the channels of `x`.
  mutating func pass(_ x: String, _ y: String, _ n: Node, role: ChannelRole? = nil, spatialOne one: Bool? = nil, rank r: Int? = nil) {
    guard has(x), !y.isEmpty else { return }
    let c = channels[find(x)] ?? 0
    add(y, channels: c, rank: r ?? rank[x], spatialOne: one ?? spatialOne.contains(x))
    union(x, y, at: n)
    if let role { roles.append((x, role)) }
  }

  mutating func visit(_ i: Int, _ n: Node) {
    let x = n.inputs.first ?? "", y = n.outputs.first ?? ""
    let extraOutputs = n.outputs.dropFirst().contains { !$0.isEmpty }
    guard n.domain.isEmpty || n.domain == "ai.onnx", !extraOutputs else { return blockInputs(n) }
    switch n.opType {
    case "Conv", "ConvTranspose":
      let group = WeightLayers.intAttribute(n, "group", 1)
      guard let w = constant(n, 1), w.rank >= 3, w.dtype == .float32, absentOrConstant(n, 2..<3) else {
        return blockInputs(n)
      }
      let outChannels = n.opType == "Conv" ? w.shape[0] : w.shape[1] * group
      if let bias = constant(n, 2), bias.dtype != .float32 || bias.count != outChannels { return blockInputs(n) }
      if n.opType == "ConvTranspose" {
        guard group == 1 else { return blockInputs(n, "feeds grouped \(n.label)") }
        consume(x, channels: w.shape[0], rank: w.rank, node: i)
        produce(y, channels: w.shape[1], rank: w.rank, node: i)
      } else if group == 1 {
        consume(x, channels: w.shape[1], rank: w.rank, node: i)
        produce(y, channels: w.shape[0], rank: w.rank, node: i)
      } else if w.shape[1] == 1, w.shape[0] == group, has(x), rank[x] == w.rank, channels[find(x)] == group {
        pass(x, y, n, role: .depthwise(node: i))
      } else {
        blockInputs(n, "feeds grouped \(n.label) (group \(group))")
        produce(y, channels: w.shape[0], rank: w.rank, node: i)
        block(y, "made by grouped \(n.label) (group \(group))")
      }
    case "Gemm":
      guard let b = constant(n, 1), b.rank == 2, b.dtype == .float32, absentOrConstant(n, 2..<3),
        constant(n, 2).map({ $0.dtype == .float32 }) ?? true
      else { return blockInputs(n) }
      let transB = WeightLayers.intAttribute(n, "transB", 0) != 0
      let out = transB ? b.shape[0] : b.shape[1], k = transB ? b.shape[1] : b.shape[0]
      if WeightLayers.intAttribute(n, "transA", 0) == 0 {
        consume(x, channels: k, rank: 2, node: i)
      } else {
        block(x, "read transposed by \(n.label)")
      }
      produce(y, channels: out, rank: 2, node: i)
      if let c = constant(n, 2), c.count != 1, c.rank > 2 || c.shape.last != out {
        block(y, "\(n.label): C of shape \(c.shape) is not per output channel")
      }
    case "MatMul":
      guard let b = constant(n, 1), b.rank == 2, b.dtype == .float32 else { return blockInputs(n) }
      let twoD = has(x) && rank[x] == 2
      if twoD { consume(x, channels: b.shape[0], rank: 2, node: i) } else { block(x, "read by \(n.label) at rank > 2") }
      produce(y, channels: b.shape[1], rank: twoD ? 2 : nil, node: i)
    case "BatchNormalization":
      guard has(x) else { return }
      let c = channels[find(x)] ?? 0
      guard (1..<5).allSatisfy({ constant(n, $0)?.count == c && constant(n, $0)?.dtype == .float32 }) else {
        return blockInputs(n, "\(n.label): parameters are not constants of \(c) values")
      }
      pass(x, y, n, role: .batchNorm(node: i))
    case "Add", "Sub", "Mul", "Div":
      binary(i, n)
    case "Concat":
      concat(n)
    case "GlobalAveragePool", "GlobalMaxPool":
      pass(x, y, n, spatialOne: true)
    case "MaxPool", "AveragePool":
      pass(x, y, n)
    case "Resize", "Upsample":
      resize(n)
    case "Flatten":
      let axis = WeightLayers.intAttribute(n, "axis", 1)
      if has(x), axis == 1, rank[x] == 2 || spatialOne.contains(x) {
        pass(x, y, n, spatialOne: true, rank: 2)
      } else {
        blockInputs(n, "flattened by \(n.label) with spatial size not known to be 1")
      }
    default:
      guard ChannelAnalysis.unary.contains(n.opType) else { return blockInputs(n) }
      guard absentOrConstant(n, 1..<n.inputs.count) else { return blockInputs(n) }
      pass(x, y, n)
    }
  }

  /// Element-wise Add/Sub/Mul/Div: every non-constant operand is in the output's group;
  /// constants must be scalars or per channel.
  mutating func binary(_ i: Int, _ n: Node) {
    guard n.inputs.count == 2, let y = n.outputs.first else { return blockInputs(n) }
    let operands = n.inputs.filter { g.constants[$0] == nil }
    guard !operands.isEmpty else { return }
    guard operands.allSatisfy(has) else {
      return blockInputs(n, "\(n.label) combines it with a tensor whose channels are not known")
    }
    let r = rank[operands[0]]
    guard let r, operands.allSatisfy({ rank[$0] == r }) else {
      return blockInputs(n, "\(n.label) broadcasts operands of different rank")
    }
    if n.opType == "Div", g.constants[n.inputs[1]] == nil {
      return blockInputs(n, "\(n.label) divides by it")
    }
    let c = channels[find(operands[0])] ?? 0
    var found: [ChannelRole] = []
    for (slot, name) in n.inputs.enumerated() {
      guard let k = g.constants[name] else { continue }
      guard k.rank <= r, r >= 2 else {
        return blockInputs(n, "\(n.label): constant of shape \(k.shape) raises the rank")
      }
      let padded = [Int](repeating: 1, count: r - k.rank) + k.shape
      if padded[1] == 1 { continue }  // the same for every channel
      guard padded[1] == c, k.dtype == .float32 else { return blockInputs(n, "\(n.label): constant of shape \(k.shape) for \(c) channels") }
      found.append(.constant(node: i, input: slot, axis: 1 - (r - k.rank), additive: n.opType == "Add" || n.opType == "Sub"))
    }
    pass(operands[0], y, n, spatialOne: operands.allSatisfy { spatialOne.contains($0) })
    for other in operands.dropFirst() { union(operands[0], other, at: n) }
    for role in found { roles.append((operands[0], role)) }
  }

  /// What `n` needs of its first input when it reads it as input channels (Conv and
  /// ConvTranspose with group 1, Gemm without transA, MatMul; constant fp32 weights), or nil.
  func readerShape(_ n: Node) -> (channels: Int, rank: Int)? {
    guard n.domain.isEmpty || n.domain == "ai.onnx", let w = constant(n, 1), w.dtype == .float32,
      absentOrConstant(n, 2..<3), constant(n, 2).map({ $0.dtype == .float32 }) ?? true
    else { return nil }
    let attr = { (key: String) in WeightLayers.intAttribute(n, key, 0) }
    switch n.opType {
    case "Conv": return w.rank >= 3 && max(attr("group"), 1) == 1 ? (w.shape[1], w.rank) : nil
    case "ConvTranspose": return w.rank >= 3 && max(attr("group"), 1) == 1 ? (w.shape[0], w.rank) : nil
    case "Gemm": return w.rank == 2 && attr("transA") == 0 ? (attr("transB") != 0 ? w.shape[1] : w.shape[0], 2) : nil
    case "MatMul": return w.rank == 2 ? (w.shape[0], 2) : nil
    default: return nil
    }
  }

  /// A Concat along channels whose output only layers that read channels read: each input's
  /// group gets those layers as consumers at its offset. Anything else blocks the inputs.
  mutating func concat(_ n: Node) {
    let y = n.outputs.first ?? ""
    let refuse = "concatenated by \(n.label) into something other than layers that read its channels"
    guard !n.inputs.isEmpty, n.inputs.allSatisfy(has), let r = rank[n.inputs[0]], n.inputs.allSatisfy({ rank[$0] == r }),
      !y.isEmpty, !g.outputs.contains(where: { $0.name == y })
    else { return blockInputs(n, refuse) }
    var axis = WeightLayers.intAttribute(n, "axis", 0)
    if axis < 0 { axis += r }
    var sizes: [Int] = []
    for t in n.inputs { sizes.append(channels[find(t)] ?? 0) }
    let total = sizes.reduce(0, +)
    let readers = g.nodes.indices.filter { g.nodes[$0].inputs.contains(y) }
    let fits = readers.allSatisfy { i in
      let rd = g.nodes[i]
      guard rd.inputs.firstIndex(of: y) == 0, rd.inputs.lastIndex(of: y) == 0, let need = readerShape(rd) else { return false }
      return need.channels == total && need.rank == r
    }
    guard axis == 1, !readers.isEmpty, fits else { return blockInputs(n, refuse) }
    var offset = 0
    for (t, size) in zip(n.inputs, sizes) {
      for i in readers { roles.append((t, .consumer(node: i, via: t, offset: offset))) }
      offset += size
    }
  }

  /// Resize/Upsample by constant scales that leave batch and channels alone.
  mutating func resize(_ n: Node) {
    let x = n.inputs.first ?? ""
    guard has(x) else { return }
    let scalesSlot = n.opType == "Upsample" || g.opset < 11 ? 1 : 2
    let sizesGiven = n.opType == "Resize" && g.opset >= 11 && n.inputs.count > 3 && !n.inputs[3].isEmpty
    guard !sizesGiven, let s = constant(n, scalesSlot), s.count >= 2, s.floats[0] == 1, s.floats[1] == 1,
      absentOrConstant(n, 1..<n.inputs.count)
    else { return blockInputs(n, "resized by \(n.label) without constant channel-preserving scales") }
    pass(x, n.outputs.first ?? "", n)
  }

  mutating func finish() -> ChannelAnalysis {
    var id: [String: Int] = [:]
    var groups: [ChannelGroup] = []
    var groupOf: [String: Int] = [:]
    for t in order {
      let r = find(t)
      if id[r] == nil {
        id[r] = groups.count
        groups.append(ChannelGroup(channels: channels[r] ?? 0, tensors: [], roles: [], blocked: blocked[r]))
      }
      let gi = id[r] ?? 0
      groups[gi].tensors.append(t)
      groups[gi].reachesOutput = groups[gi].reachesOutput || outputs.contains(t)
      groupOf[t] = gi
    }
    for (t, role) in roles {
      guard let gi = groupOf[t] else { continue }
      groups[gi].roles.append(role)
    }
    return ChannelAnalysis(groups: groups, groupOf: groupOf)
  }
}
