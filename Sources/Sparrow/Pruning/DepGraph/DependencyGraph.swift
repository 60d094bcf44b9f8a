/// The dependency graph of a model's prunable dimensions, after DepGraph (Fang et al., CVPR
/// 2023, the base of Torch-Pruning and LLM-Pruner): its nodes are dimensions — one axis of one
/// tensor — and an edge joins two dimensions that must lose the same indices (an element-wise
/// op's operands and output, a depthwise convolution's input and output, the two sides of a
/// residual Add, the heads axis of Q, K and V that an attention MatMul pairs). Its connected
/// components are the channel groups; the layers whose filters make a group's dimension
/// (producers) are scored together, and every constant along a member dimension (biases,
/// BatchNorm parameters, per-channel scales, the reading layers' input channels, the head count
/// in a Reshape) is sliced with it.
///
/// Built in one pass over the nodes (ONNX graphs are topologically sorted) as a union-find keyed
/// by tensor: every tensor carries at most one tracked dimension (its axis, counted from the end
/// so that broadcasting keeps it, and its unit: entries per group channel). Where two dimensions
/// with different counts are joined and one count divides the other (a projection's 768 outputs
/// and the 12 heads a Reshape makes of them), the finer group is coarsened: its channels become
/// blocks of the coarser one's. Anything not followed blocks the groups it touches, with the
/// reason; a norm over the dimension (ReduceMean channel norms) is followed but marks the group
/// as changing the function. LayerNormalization over a dimension is not followed: in a
/// transformer that is the residual stream, which is left whole. Split and Slice along a
/// dimension are index maps (`SplitSlice.swift`); GroupNormalization coarsens the group to
/// whole norm groups (`GroupNorm.swift`).
enum DependencyGraph {
  static let unary: Set<String> = [
    "Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Clip", "Identity", "Elu", "Softplus",
    "Neg", "Abs", "Exp", "Dropout", "Erf", "Sqrt", "Reciprocal", "Softsign", "Gelu", "Mish", "Selu", "Celu",
    "Cast", "Floor", "Ceil", "Round", "Sign", "Log", "ThresholdedRelu", "Shrink",
  ]
  /// Element-wise ops of two operands, with broadcasting.
  static let binary: Set<String> = ["Add", "Sub", "Mul", "Div", "Pow", "Max", "Min"]
  static let reductions: Set<String> = [
    "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceL2", "ReduceL1", "ReduceSumSquare", "ReduceProd",
  ]

  static func build(_ g: Graph) -> ChannelAnalysis {
    var b = DepBuilder(g: g, index: GraphIndex(g))
    for v in g.inputs { if let s = v.shape { b.rank[v.name] = s.count } }
    for (i, n) in g.nodes.enumerated() { b.visit(i, n) }
    for o in g.outputs where b.has(o.name) {
      b.block(o.name, "reaches model output '\(o.name)'")
      b.outputs.insert(o.name)
    }
    return b.finish()
  }
}

/// Union-find over tensors (each with its one tracked dimension), counts, block and
/// change-of-function reasons kept at each root.
struct DepBuilder {
  let g: Graph
  let index: GraphIndex
  var parent: [String: String] = [:]
  /// Channels of the group, at each root.
  var channels: [String: Int] = [:]
  var blocked: [String: String] = [:]
  var changes: [String: String] = [:]
  /// The tracked axis (negative, from the end) and unit of each member.
  var axis: [String: Int] = [:]
  var unit: [String: Int] = [:]
  var rank: [String: Int] = [:]
  /// Known sizes (nil: unknown) of tensors made by Reshape/Transpose/MatMul chains.
  var shape: [String: [Int?]] = [:]
  /// Axes (negative) along which a tensor outside every group is known to have size 1: it
  /// broadcasts along a member dimension (a channel mean, an attention mask's head axis).
  var free: [String: Set<Int>] = [:]
  var spatialOne: Set<String> = []
  var roles: [(String, ChannelRole)] = []
  var order: [String] = []
  var outputs: Set<String> = []
  /// `SampleShapes`, planned on first need.
  var sample: [String: [Int]]?
  /// Split and Slice outputs along a group's channels (`SplitSlice.swift`), in visit order.
  var cuts: [Cut] = []
  /// Parent root -> the windows of its channels that Splits and Slices took so far.
  var windows: [String: [Range<Int>]] = [:]
  /// Split node -> every output's window (entries of the parent's axis).
  var splitWindows: [Int: [Range<Int>]] = [:]

  /// Whether `t` (in no group) is known to broadcast along axis `a` (size 1 there, or a lower
  /// rank): by the rules above, else by the planner's shapes for a sample input.
  mutating func broadcasts(_ t: String, along a: Int) -> Bool {
    if free[t]?.contains(a) == true { return true }
    if sample == nil { sample = SampleShapes.of(g) }
    guard let s = sample?[t] else { return false }
    return -a > s.count || s[s.count + a] == 1
  }

  func has(_ t: String) -> Bool { parent[t] != nil }

  mutating func find(_ t: String) -> String {
    var r = t
    while let p = parent[r], p != r { r = p }
    var x = t
    while let p = parent[x], p != r {
      parent[x] = r
      x = p
    }
    return r
  }

  /// Entries of the member's axis: channels times unit.
  mutating func size(_ t: String) -> Int { (channels[find(t)] ?? 0) * (unit[t] ?? 1) }

  mutating func add(
    _ t: String, channels c: Int, axis a: Int, unit u: Int = 1, rank r: Int?, spatialOne one: Bool = false
  ) {
    guard !t.isEmpty, !has(t) else { return }
    parent[t] = t
    channels[t] = c
    axis[t] = a
    unit[t] = u
    order.append(t)
    if let r { rank[t] = r }
    if one { spatialOne.insert(t) }
  }

  mutating func block(_ t: String, _ reason: String) {
    guard has(t) else { return }
    let r = find(t)
    if blocked[r] == nil { blocked[r] = reason }
  }

  mutating func changesFunction(_ t: String, _ reason: String) {
    guard has(t) else { return }
    let r = find(t)
    if changes[r] == nil { changes[r] = reason }
  }

  /// Makes every channel of `root`'s group `factor` channels of a coarser one.
  mutating func coarsen(_ root: String, by factor: Int) {
    for t in order where find(t) == root { unit[t] = (unit[t] ?? 1) * factor }
    channels[root] = (channels[root] ?? 0) / factor
  }

  /// Joins the dimensions of `a` and `b`: equal entries along their axes, or (`sameEntries`
  /// false: a head split) equal channel counts.
  mutating func union(_ a: String, _ b: String, at node: Node, sameEntries: Bool = true) {
    var ra = find(a), rb = find(b)
    guard ra != rb else { return }
    let sa = size(a), sb = size(b)
    if !sameEntries {
      if channels[ra] != channels[rb] {
        block(a, "\(node.label) joins \(channels[ra] ?? 0) and \(channels[rb] ?? 0) channels")
      }
    } else if sa != sb {
      block(a, "\(node.label) joins \(sa) and \(sb) channels")
      block(b, "\(node.label) joins \(sa) and \(sb) channels")
    } else {
      // Same entries: the member with the larger unit decides the coarser channels.
      let ua = unit[a] ?? 1, ub = unit[b] ?? 1
      if ua > ub, ua % ub == 0 { coarsen(rb, by: ua / ub) } else if ub > ua, ub % ua == 0 { coarsen(ra, by: ub / ua) }
      if unit[a] != unit[b] {
        block(a, "\(node.label) joins channels of \(ua) and \(ub) entries")
        block(b, "\(node.label) joins channels of \(ua) and \(ub) entries")
      }
    }
    ra = find(a)
    rb = find(b)
    parent[rb] = ra
    if blocked[ra] == nil, let why = blocked[rb] { blocked[ra] = why }
    if changes[ra] == nil, let why = changes[rb] { changes[ra] = why }
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

  /// `x` read as input channels along axis `a` by `node`, which expects `c` of them.
  mutating func consume(_ x: String, channels c: Int, axis a: Int, node i: Int) {
    guard has(x) else { return }
    if axis[x] != a || size(x) != c {
      block(x, "\(g.nodes[i].label) reads it with a shape Sparrow does not match")
    } else {
      roles.append((x, .consumer(node: i, via: x, offset: 0)))
    }
  }

  mutating func produce(_ y: String, channels c: Int, axis a: Int, rank r: Int?, node i: Int) {
    add(y, channels: c, axis: a, rank: r)
    roles.append((y, .producer(node: i)))
  }

  /// `y` has the dimension of `x` (at axis `a`, default the same).
  mutating func pass(
    _ x: String, _ y: String, _ n: Node, role: ChannelRole? = nil, spatialOne one: Bool? = nil, rank r: Int? = nil,
    axis a: Int? = nil, unit u: Int? = nil
  ) {
    guard has(x), !y.isEmpty else { return }
    let c = channels[find(x)] ?? 0
    add(
      y, channels: c, axis: a ?? axis[x] ?? -1, unit: u ?? unit[x] ?? 1, rank: r ?? rank[x],
      spatialOne: one ?? spatialOne.contains(x))
    if has(y) { union(x, y, at: n) }
    if let role { roles.append((x, role)) }
  }

  /// Axis `a` of a tensor of rank `r` counted from the end, or nil when out of range.
  static func negative(_ a: Int, rank r: Int?) -> Int? {
    if a < 0 { return r.map { a >= -$0 ? a : nil } ?? a }
    guard let r, a < r else { return nil }
    return a - r
  }

  /// The channel axis of NCHW-style ops (axis 1) for a member, from the end; nil when the rank
  /// is not known.
  func channelAxis(_ t: String) -> Int? { rank[t].map { 1 - $0 } }

  mutating func visit(_ i: Int, _ n: Node) {
    let x = n.inputs.first ?? "", y = n.outputs.first ?? ""
    let extraOutputs = n.outputs.dropFirst().contains { !$0.isEmpty }
    guard n.domain.isEmpty || n.domain == "ai.onnx", !extraOutputs || n.opType == "Dropout" || n.opType == "Split"
    else {
      return blockInputs(n)
    }
    let weighted: Set<String> = ["Conv", "ConvTranspose", "Gemm", "MatMul", "LayerNormalization"]
    if !weighted.contains(n.opType), !n.inputs.contains(where: has) {
      return freeOnly(n)
    }
    switch n.opType {
    case "Conv", "ConvTranspose": conv(i, n)
    case "Gemm":
      guard let b = constant(n, 1), b.rank == 2, b.dtype == .float32, absentOrConstant(n, 2..<3),
        constant(n, 2).map({ $0.dtype == .float32 }) ?? true
      else { return blockInputs(n) }
      let transB = WeightLayers.intAttribute(n, "transB", 0) != 0
      let out = transB ? b.shape[0] : b.shape[1], k = transB ? b.shape[1] : b.shape[0]
      if WeightLayers.intAttribute(n, "transA", 0) == 0 {
        consume(x, channels: k, axis: -1, node: i)
      } else {
        block(x, "read transposed by \(n.label)")
      }
      produce(y, channels: out, axis: -1, rank: 2, node: i)
      if let c = constant(n, 2), c.count != 1, c.rank > 2 || c.shape.last != out {
        block(y, "\(n.label): C of shape \(c.shape) is not per output channel")
      }
    case "MatMul": matMul(i, n)
    case "BatchNormalization":
      guard has(x), axis[x] == channelAxis(x), unit[x] == 1 else {
        return blockInputs(n, "\(n.label) normalises another axis")
      }
      let c = channels[find(x)] ?? 0
      guard (1..<5).allSatisfy({ constant(n, $0)?.count == c && constant(n, $0)?.dtype == .float32 }) else {
        return blockInputs(n, "\(n.label): parameters are not constants of \(c) values")
      }
      pass(x, y, n, role: .batchNorm(node: i))
    case _ where DependencyGraph.binary.contains(n.opType): elementwise(i, n)
    case "Concat": concat(n)
    case "GlobalAveragePool", "GlobalMaxPool", "MaxPool", "AveragePool", "LpPool", "GlobalLpPool":
      guard axis[x] == channelAxis(x), unit[x] == 1 else {
        return blockInputs(n, "pooled by \(n.label) along its channels")
      }
      pass(x, y, n, spatialOne: n.opType.hasPrefix("Global") ? true : nil)
    case "Resize", "Upsample": resize(n)
    case "Split": split(i, n)
    case "Slice": slice(i, n)
    case "GroupNormalization", "InstanceNormalization": groupNorm(i, n)
    case "Flatten":
      let ax = WeightLayers.intAttribute(n, "axis", 1)
      if has(x), ax == 1, axis[x] == channelAxis(x), rank[x] == 2 || spatialOne.contains(x) {
        pass(x, y, n, spatialOne: true, rank: 2, axis: -1)
      } else {
        blockInputs(n, "flattened by \(n.label) with spatial size not known to be 1")
      }
    case "Reshape": reshape(i, n)
    case "Shape":
      // Only a Reshape back to this shape is followed (`reshapeBack`, which checks the rest).
      let readers = g.nodes.filter { $0.inputs.contains(y) }
      guard !y.isEmpty, !g.outputs.contains(where: { $0.name == y }),
        readers.allSatisfy({ $0.opType == "Reshape" && $0.inputs.firstIndex(of: y) == 1 && reshapesBack($0, x) })
      else { return blockInputs(n, "its shape is read by \(n.label)") }
    case "Transpose": transpose(n)
    case "Softmax", "LogSoftmax":
      let d = WeightLayers.intAttribute(n, "axis", g.opset >= 13 ? -1 : 1)
      guard let a = axis[x], let s = DepBuilder.negative(d, rank: rank[x]), a < s else {
        return blockInputs(n, "\(n.label) normalises along it")
      }
      pass(x, y, n)
      shape[y] = shape[x]
    case _ where DependencyGraph.reductions.contains(n.opType): reduce(n)
    case "LayerNormalization":
      // Over the last axis in a transformer: the residual stream, which every block adds to.
      // Its output is a member (blocked) so that the Adds joining it say why.
      let why = "normalised by \(n.label) (in a transformer the residual stream: not pruned by default)"
      blockInputs(n, why)
      let ax = WeightLayers.intAttribute(n, "axis", -1)
      guard let scale = constant(n, 1), scale.rank == 1, ax == -1 || rank[x].map({ ax == $0 - 1 }) == true else {
        return
      }
      add(y, channels: scale.count, axis: -1, rank: rank[x])
      block(y, why)
      if has(x), axis[x] == -1 { union(x, y, at: n) }
    default:
      guard DependencyGraph.unary.contains(n.opType), absentOrConstant(n, 1..<n.inputs.count) else {
        return blockInputs(n)
      }
      if n.opType == "Cast", case .int(let to)? = n.attributes["to"], to != 1 {
        return blockInputs(n, "cast by \(n.label) to a type other than float")
      }
      pass(x, y, n)
      shape[y] = shape[x]
    }
  }

  /// A node none of whose inputs is grouped: its output may still be known to broadcast along
  /// some axes (size 1 there), which lets it meet a member dimension in an element-wise op.
  mutating func freeOnly(_ n: Node) {
    guard let y = n.outputs.first, !y.isEmpty else { return }
    let x = n.inputs.first ?? ""
    switch n.opType {
    case "Unsqueeze":
      var axes: [Int] = []
      if case .ints(let a)? = n.attributes["axes"] {
        axes = a.map { Int($0) }
      } else if let k = constant(n, 1) {
        axes = k.int64s.map { Int($0) }
      }
      guard let r = rank[x] else { return }
      let out = r + axes.count
      rank[y] = out
      free[y] = Set(axes.compactMap { DepBuilder.negative($0, rank: out) })
    case _ where DependencyGraph.unary.contains(n.opType):
      free[y] = free[x]
      rank[y] = rank[x]
    case _ where DependencyGraph.binary.contains(n.opType):
      var axes: Set<Int>?
      for t in n.inputs {
        let f = g.constants[t].map(constantFree) ?? free[t] ?? []
        axes = axes.map { $0.intersection(f) } ?? f
      }
      // Only axes every operand broadcasts along stay size 1.
      if let axes, !axes.isEmpty { free[y] = axes }
      rank[y] = n.inputs.compactMap { rank[$0] }.max()
    default: break
    }
  }

  /// Axes along which a constant is size 1 (up to rank 8, broadcast from the end).
  func constantFree(_ k: Tensor) -> Set<Int> {
    Set((-8)...(-1)).filter { -$0 > k.rank || k.shape[k.rank + $0] == 1 }
  }

  mutating func conv(_ i: Int, _ n: Node) {
    let x = n.inputs.first ?? "", y = n.outputs.first ?? ""
    let group = WeightLayers.intAttribute(n, "group", 1)
    guard let w = constant(n, 1), w.rank >= 3, w.dtype == .float32, absentOrConstant(n, 2..<3) else {
      return blockInputs(n)
    }
    let a = 1 - w.rank
    let outChannels = n.opType == "Conv" ? w.shape[0] : w.shape[1] * group
    if let bias = constant(n, 2), bias.dtype != .float32 || bias.count != outChannels { return blockInputs(n) }
    if n.opType == "ConvTranspose" {
      guard group == 1 else { return blockInputs(n, "feeds grouped \(n.label)") }
      consume(x, channels: w.shape[0], axis: a, node: i)
      produce(y, channels: w.shape[1], axis: a, rank: w.rank, node: i)
    } else if group == 1 {
      consume(x, channels: w.shape[0 + 1], axis: a, node: i)
      produce(y, channels: w.shape[0], axis: a, rank: w.rank, node: i)
    } else if w.shape[1] == 1, w.shape[0] == group, has(x), axis[x] == a, size(x) == group, unit[x] == 1 {
      pass(x, y, n, role: .depthwise(node: i), rank: w.rank)
    } else {
      blockInputs(n, "feeds grouped \(n.label) (group \(group))")
      produce(y, channels: w.shape[0], axis: a, rank: w.rank, node: i)
      block(y, "made by grouped \(n.label) (group \(group))")
    }
  }

  /// MatMul by a constant weight (a linear layer: reads the last axis, makes the last axis), or
  /// of two activations (attention): batch axes pair up, the rows of the first and the columns of
  /// the second go to the output, the contracted axis is not followed.
  mutating func matMul(_ i: Int, _ n: Node) {
    guard n.inputs.count == 2 else { return blockInputs(n) }
    let x = n.inputs[0], y = n.outputs.first ?? ""
    if let b = constant(n, 1) {
      guard b.rank == 2, b.dtype == .float32 else { return blockInputs(n) }
      consume(x, channels: b.shape[0], axis: -1, node: i)
      produce(y, channels: b.shape[1], axis: -1, rank: rank[x], node: i)
      return
    }
    let a = n.inputs[0], b = n.inputs[1]
    guard g.constants[a] == nil else { return blockInputs(n) }
    var dim: (from: String, axis: Int)?
    for (t, isB) in [(a, false), (b, true)] where has(t) {
      guard let ax = axis[t] else { return blockInputs(n) }
      if ax <= -3 {
        let other = isB ? a : b
        guard has(other) ? axis[other] == ax : broadcasts(other, along: ax) else {
          return blockInputs(n, "\(n.label) pairs it with a tensor whose heads are not known")
        }
        dim = (t, ax)
      } else if ax == (isB ? -1 : -2) {
        guard dim == nil || dim?.axis == ax else { return blockInputs(n, "\(n.label) keeps two of its dimensions") }
        dim = (t, ax)
      } else {
        return blockInputs(n, "contracted by \(n.label)")
      }
    }
    guard let dim else { return }
    pass(
      dim.from, y, n, rank: max(rank[a] ?? 0, rank[b] ?? 0) > 0 ? max(rank[a] ?? 0, rank[b] ?? 0) : nil, axis: dim.axis)
    if dim.axis <= -3, has(a), has(b) { union(a, b, at: n) }
    if let sa = shape[a], let sb = shape[b], sa.count >= 2, sb.count >= 2 {
      shape[y] = Array(sa.dropLast(1)) + [sb.last ?? nil]
    }
  }

  /// Element-wise ops with broadcasting: every grouped operand is joined with the output;
  /// constants are scalars, the same along the dimension, or per channel (sliced with it);
  /// other operands must broadcast along it.
  mutating func elementwise(_ i: Int, _ n: Node) {
    guard n.inputs.count == 2, let y = n.outputs.first else { return blockInputs(n) }
    let members = n.inputs.filter(has)
    guard let first = members.first, let a = axis[first] else { return }
    guard members.allSatisfy({ axis[$0] == a }) else {
      return blockInputs(n, "\(n.label) broadcasts it against another axis")
    }
    let c = size(first)
    var found: [ChannelRole] = []
    for (slot, name) in n.inputs.enumerated() where !has(name) {
      if let k = g.constants[name] {
        if -a > k.rank || k.shape[k.rank + a] == 1 { continue }  // the same for every channel
        guard k.shape[k.rank + a] == c, k.dtype == .float32 || n.opType == "Pow" else {
          return blockInputs(n, "\(n.label): constant of shape \(k.shape) for \(c) channels")
        }
        if n.opType == "Pow" || n.opType == "Max" || n.opType == "Min" {
          return blockInputs(n, "\(n.label): per-channel constant")
        }
        found.append(
          .constant(node: i, input: slot, axis: k.rank + a, additive: n.opType == "Add" || n.opType == "Sub"))
      } else if !broadcasts(name, along: a) {
        return blockInputs(n, "\(n.label) combines it with a tensor whose channels are not known")
      }
    }
    let r = n.inputs.compactMap { rank[$0] }.max()
    pass(first, y, n, spatialOne: members.allSatisfy { spatialOne.contains($0) }, rank: r)
    for other in members.dropFirst() { union(first, other, at: n) }
    for role in found { roles.append((first, role)) }
    shape[y] = members.count == n.inputs.count ? nil : shape[first].map { s in s.map { $0 == 1 ? nil : $0 } }
  }

  /// A reduction: over the member dimension with keepdims (a channel norm's mean) the output
  /// broadcasts along it, and removing channels changes what it computes; over other axes with
  /// keepdims the dimension passes.
  mutating func reduce(_ n: Node) {
    let x = n.inputs.first ?? "", y = n.outputs.first ?? ""
    guard let a = axis[x] else { return }
    var axes: [Int]? = nil
    if case .ints(let v)? = n.attributes["axes"] {
      axes = v.map { Int($0) }
    } else if let k = constant(n, 1) {
      axes = k.int64s.map { Int($0) }
    }
    let keep = WeightLayers.intAttribute(n, "keepdims", 1) != 0
    let noop = WeightLayers.intAttribute(n, "noop_with_empty_axes", 0) != 0
    let all: [Int]? = noop ? [] : rank[x].map { Array(0..<$0) }
    guard keep, let list = axes ?? all else {
      return blockInputs(n, "reduced by \(n.label) without keepdims or known axes")
    }
    let neg = list.map { DepBuilder.negative($0, rank: rank[x]) }
    guard !neg.contains(where: { $0 == nil }) else {
      return blockInputs(n, "reduced by \(n.label) along axes of unknown position")
    }
    if neg.contains(a) {
      changesFunction(
        x, "\(n.label) (\(n.opType)) reduces over the channels: with fewer channels it computes another value")
      free[y] = Set(neg.compactMap { $0 })
      rank[y] = rank[x]
    } else {
      pass(x, y, n)
    }
  }

  /// The entries of a Reshape's shape: each value (nil: taken from the input or computed) and
  /// the constant that holds it (node, input, index). The shape is a constant, or a Concat of
  /// constants and one-element pieces computed from the input's shape (as torch exports
  /// `x.view(*x.shape[:-1], heads, size)`); nil otherwise.
  func shapeEntries(_ n: Node, _ i: Int) -> [(value: Int?, at: (node: Int, input: Int, entry: Int)?)]? {
    if let s = constant(n, 1) {
      return s.int64s.enumerated().map { k, v in (v == 0 ? nil : Int(v), (i, 1, k)) }
    }
    guard n.inputs.count > 1, let c = index.producer(of: n.inputs[1]), g.nodes[c].opType == "Concat" else { return nil }
    var out: [(value: Int?, at: (node: Int, input: Int, entry: Int)?)] = []
    for (k, piece) in g.nodes[c].inputs.enumerated() {
      if let t = g.constants[piece] {
        out += t.int64s.enumerated().map { e, v in (v == 0 ? nil : Int(v), (c, k, e)) }
      } else if let u = index.producer(of: piece), g.nodes[u].opType == "Unsqueeze", let src = g.nodes[u].inputs.first,
        let gather = index.producer(of: src), g.nodes[gather].opType == "Gather", g.nodes[gather].inputs.count > 1,
        g.constants[g.nodes[gather].inputs[1]]?.rank == 0
      {
        out.append((nil, nil))  // one entry: a scalar of the input's shape
      } else {
        return nil
      }
    }
    return out
  }

  /// Reshape to a known shape: a split of the last axis into [..., heads, size] (the heads
  /// become the group's channels) or the merge back; anything else is not followed.
  mutating func reshape(_ i: Int, _ n: Node) {
    let x = n.inputs.first ?? "", y = n.outputs.first ?? ""
    if n.inputs.count > 1, let sh = index.producer(of: n.inputs[1]), g.nodes[sh].opType == "Shape",
      let x0 = g.nodes[sh].inputs.first, has(x0)
    {
      return reshapeBack(n, to: x0)
    }
    guard has(x), let a = axis[x], let e = shapeEntries(n, i), e.count >= 1 else {
      return blockInputs(n, "reshaped by \(n.label) to a shape that is not known")
    }
    let s = e.map(\.value)
    let sz = size(x), u = unit[x] ?? 1
    let inferred = s.filter { $0 == -1 }.count
    // Split: [..., heads, d] with d known; heads given, or -1 (the only one) and inferred.
    if a == -1, s.count >= 2, let d = s[s.count - 1], d > 0, d % u == 0, sz % d == 0,
      let h = s[s.count - 2], h == sz / d || (h == -1 && inferred == 1)
    {
      coarsen(find(x), by: d / u)
      add(y, channels: sz / d, axis: -2, rank: s.count)
      union(x, y, at: n, sameEntries: false)
      if h != -1, let at = e[s.count - 2].at {
        roles.append((y, .shapeEntry(node: at.node, input: at.input, entry: at.entry)))
      }
      shape[y] = s.map { $0.flatMap { $0 > 0 ? $0 : nil } }
      return
    }
    // Merge: [..., heads, d] -> [..., heads·d], the last entry given or -1.
    if a == -2, let sx = shape[x], sx.count == s.count + 1, let d = sx.last ?? nil, let last = s.last ?? nil,
      last == sz * d || (last == -1 && inferred == 1)
    {
      add(y, channels: channels[find(x)] ?? 0, axis: -1, unit: u * d, rank: s.count)
      union(x, y, at: n, sameEntries: false)
      if last != -1, let at = e[s.count - 1].at {
        roles.append((y, .shapeEntry(node: at.node, input: at.input, entry: at.entry)))
      }
      return
    }
    if normGroups(i, n, e) { return }
    blockInputs(n, "reshaped by \(n.label) in a way not followed (only head splits and merges are)")
  }

  mutating func transpose(_ n: Node) {
    let x = n.inputs.first ?? "", y = n.outputs.first ?? ""
    guard has(x), let a = axis[x], case .ints(let p)? = n.attributes["perm"] else {
      return blockInputs(n, "transposed by \(n.label) without a perm")
    }
    let perm = p.map { Int($0) }, r = perm.count
    guard rank[x] == nil || rank[x] == r, let j = perm.firstIndex(of: r + a) else { return blockInputs(n) }
    pass(x, y, n, rank: r, axis: j - r)
    if let sx = shape[x], sx.count == r { shape[y] = perm.map { sx[$0] } }
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
    guard !n.inputs.isEmpty, n.inputs.allSatisfy(has), let r = rank[n.inputs[0]],
      n.inputs.allSatisfy({ rank[$0] == r }),
      n.inputs.allSatisfy({ axis[$0] == 1 - r && unit[$0] == 1 }), !y.isEmpty,
      !g.outputs.contains(where: { $0.name == y })
    else { return blockInputs(n, refuse) }
    var ax = WeightLayers.intAttribute(n, "axis", 0)
    if ax < 0 { ax += r }
    var sizes: [Int] = []
    for t in n.inputs { sizes.append(size(t)) }
    let total = sizes.reduce(0, +)
    let readers = g.nodes.indices.filter { g.nodes[$0].inputs.contains(y) }
    let fits = readers.allSatisfy { i in
      let rd = g.nodes[i]
      guard rd.inputs.firstIndex(of: y) == 0, rd.inputs.lastIndex(of: y) == 0, let need = readerShape(rd) else {
        return false
      }
      return need.channels == total && need.rank == r
    }
    guard ax == 1, !readers.isEmpty, fits else { return blockInputs(n, refuse) }
    var offset = 0
    for (t, sz) in zip(n.inputs, sizes) {
      for i in readers { roles.append((t, .consumer(node: i, via: t, offset: offset))) }
      offset += sz
    }
  }

  /// Resize/Upsample by constant scales that leave batch and channels alone.
  mutating func resize(_ n: Node) {
    let x = n.inputs.first ?? ""
    guard has(x) else { return }
    let scalesSlot = n.opType == "Upsample" || g.opset < 11 ? 1 : 2
    let sizesGiven = n.opType == "Resize" && g.opset >= 11 && n.inputs.count > 3 && !n.inputs[3].isEmpty
    guard !sizesGiven, axis[x] == channelAxis(x), let s = constant(n, scalesSlot), s.count >= 2, s.floats[0] == 1,
      s.floats[1] == 1,
      absentOrConstant(n, 1..<n.inputs.count)
    else { return blockInputs(n, "resized by \(n.label) without constant channel-preserving scales") }
    pass(x, n.outputs.first ?? "", n)
  }

  mutating func finish() -> ChannelAnalysis {
    var id: [String: Int] = [:]
    var groups: [ChannelGroup] = []
    var groupOf: [String: Int] = [:]
    var axisOf: [String: Int] = [:], unitOf: [String: Int] = [:]
    for t in order {
      let r = find(t)
      if id[r] == nil {
        id[r] = groups.count
        groups.append(
          ChannelGroup(
            channels: channels[r] ?? 0, tensors: [], roles: [], blocked: blocked[r], changesFunction: changes[r]))
      }
      let gi = id[r] ?? 0
      groups[gi].tensors.append(t)
      groups[gi].reachesOutput = groups[gi].reachesOutput || outputs.contains(t)
      groupOf[t] = gi
      axisOf[t] = axis[t]
      unitOf[t] = unit[t] ?? 1
    }
    for (t, role) in roles {
      guard let gi = groupOf[t] else { continue }
      groups[gi].roles.append(role)
      groups[gi].units.append(unit[t] ?? 1)
    }
    var slices: [ChannelSlice] = []
    for c in cuts {
      guard let part = groupOf[c.tensor], let parent = groupOf[c.parent], part != parent else { continue }
      let via = " (its channels come through \(g.nodes[c.node].label))"
      if groups[part].blocked == nil, let why = groups[parent].blocked { groups[part].blocked = why + via }
      if groups[part].changesFunction == nil, let why = groups[parent].changesFunction {
        groups[part].changesFunction = why + via
      }
      if groups[parent].reachesOutput { groups[part].reachesOutput = true }
      slices.append(
        ChannelSlice(
          group: part, parent: parent, node: c.node, output: c.output, window: c.window, unit: unit[c.tensor] ?? 1,
          entry: c.entry))
    }
    return ChannelAnalysis(
      groups: groups, groupOf: groupOf, axisOf: axisOf, unitOf: unitOf, slices: slices, splitWindows: splitWindows)
  }
}
