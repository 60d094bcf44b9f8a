/// What a node does with the channels of a group.
enum ChannelRole: Sendable, Equatable {
  /// Its output channels are the group's (Conv, ConvTranspose, Gemm, MatMul): a filter each.
  case producer(node: Int)
  /// A depthwise convolution inside the group: one filter per channel, in and out.
  case depthwise(node: Int)
  /// A BatchNormalization inside the group: four parameters per channel.
  case batchNorm(node: Int)
  /// A GroupNormalization (or InstanceNormalization: groups of one channel) inside the group,
  /// whose channels are whole norm groups of `channelsPerGroup` channels: scale and bias go
  /// with them (one value per norm group where `perGroupParameters`, opset 18), and
  /// `num_groups` becomes the kept count.
  case groupNorm(node: Int, channelsPerGroup: Int, perGroupParameters: Bool)
  /// A per-channel constant operand of an element-wise op; `axis` is the channel axis in the
  /// constant's own shape; `additive` for Add/Sub (zeroed with the channel), not for Mul/Div.
  case constant(node: Int, input: Int, axis: Int, additive: Bool)
  /// Reads the group's channels as its input channels (Conv, ConvTranspose, Gemm, MatMul):
  /// `via` is the group's tensor whose values it sees, `offset` where the group's channels start
  /// among its inputs (nonzero behind a Concat).
  case consumer(node: Int, via: String, offset: Int)
  /// A constant that holds the group's size at `entry` (input `input` of `node`: a Reshape's
  /// shape, or one piece of the Concat that builds it), for heads split off a projection or
  /// merged back: the entry becomes the kept channels times the role's unit.
  case shapeEntry(node: Int, input: Int, entry: Int)
}

/// Tensors that share one channel index space: a filter's output channel c is channel c of
/// every tensor of its group, through BatchNorm, element-wise ops (residual Adds, squeeze-and-
/// excitation Muls, GELU), pools, Resize, depthwise convolutions, Flatten, head splits and
/// merges, up to the layers that read the channels (directly, or behind a channel Concat that
/// only such layers read). Removing channel c of a group removes it everywhere in the group.
///
/// A channel of the group may span several entries of a tensor's axis: an attention head is one
/// channel of its group and `unit` = head size entries of the Q/K/V projections' outputs.
struct ChannelGroup: Sendable {
  var channels: Int
  var tensors: [String]
  var roles: [ChannelRole]
  /// Entries of the role's tensor axis per channel of the group, parallel to `roles`.
  var units: [Int] = []
  /// Why the group's channels cannot be removed physically (nil: they can).
  var blocked: String?
  /// Why removing channels changes what the model computes even where the pruned filters are
  /// zero (a norm over the channels now runs over fewer of them); nil when it does not.
  var changesFunction: String?
  /// Some tensor of the group is a model output: its channels are the model's, not to prune.
  var reachesOutput = false

  var producers: [Int] {
    roles.compactMap { if case .producer(let n) = $0 { return n } else { return nil } }
  }

  /// The unit of producer `node` (1 when it is not one).
  func unit(ofProducer node: Int) -> Int {
    for (r, u) in zip(roles, units) { if case .producer(let n) = r, n == node { return u } }
    return 1
  }
}

/// The channel groups of a graph: the connected components of its dependency graph
/// (`DependencyGraph`).
struct ChannelAnalysis: Sendable {
  var groups: [ChannelGroup]
  var groupOf: [String: Int]
  /// The tracked axis of each grouped tensor, counted from the end (-1: the last axis).
  var axisOf: [String: Int] = [:]
  /// Entries of that axis per group channel.
  var unitOf: [String: Int] = [:]
  /// Split and Slice outputs that take windows of a group's channels (`ChannelSlice`).
  var slices: [ChannelSlice] = []
  /// Each channel Split's output windows, by node.
  var splitWindows: [Int: [Range<Int>]] = [:]

  static func analyse(_ g: Graph) -> ChannelAnalysis { DependencyGraph.build(g) }
}
