/// How `Pruner` chooses the weights to zero.
public enum PruneMethod: String, CaseIterable, Sendable {
  /// Unstructured: the smallest |w| go.
  case magnitude
  /// Unstructured, seeded uniform choice: the baseline of the random-pruning literature.
  case random
  /// Semi-structured N:M: in every group of M input channels (at one kernel position) the N
  /// largest |w| stay.
  case nm
  /// Whole `rows x cols` blocks of the M x K matrix view, smallest mean square first.
  case block
  /// Filters (output channels) with the smallest L1 norm go.
  case channelL1 = "channel-l1"
  /// Filters closest to the layer's geometric median go (FPGM, He et al., CVPR 2019): the ones
  /// with the smallest summed Euclidean distance to the other filters of the layer.
  case channelFPGM = "channel-fpgm"
  /// Channels by a forward-only, Taylor-style saliency over `--calibration` inputs: what the
  /// channel adds to the layers that read it, ‖W_reader[:, c]‖₂ · ‖x_c‖₂ summed over its readers
  /// (`TaylorScores`). Not the gradient Taylor score |a·∂L/∂a| (Sparrow computes no gradients).
  case channelTaylor = "channel-taylor"
  /// Wanda (Sun et al., 2024): |w| times the input feature's L2 norm over `--calibration`
  /// inputs, compared within each output row; with `--pattern N:M`, within each N:M group.
  case wanda
  /// SparseGPT (Frantar & Alistarh, 2023): layer-wise OBS reconstruction from the calibration
  /// inputs' Hessian; pruned weights' error moves onto the kept ones. `--pattern N:M` too.
  case sparsegpt
  /// Stripe-wise (filter-in-filter, Meng et al., 2020): whole kernel positions of a filter
  /// across all its input channels, `W[o, :, i, j]`, smallest mean |w| first. Convolutions only
  /// (a 1x1 filter is one stripe); Gemm and MatMul are left dense.
  case stripe

  /// Methods that run the model on `--calibration` inputs.
  public var isCalibrated: Bool { self == .wanda || self == .sparsegpt || self == .channelTaylor }

  /// Filter pruning: whole output channels, which `--shrink` can remove physically.
  public var isChannel: Bool { self == .channelL1 || self == .channelFPGM || self == .channelTaylor }
}

/// Which weights are ranked together.
public enum PruneScope: String, CaseIterable, Sendable {
  /// Every eligible layer is pruned to the sparsity on its own.
  case layer
  /// All eligible weights (or blocks, or normalised filter scores) are ranked together and the
  /// smallest fraction of all of them goes, so layers end at different sparsities.
  case global
}

/// An N:M pattern: at most `n` nonzeros in every group of `m`.
public struct NMPattern: Sendable, Equatable, CustomStringConvertible {
  public let n: Int, m: Int
  /// `n` in 1...m and `m` in 2...32 (the kernels' N:M format holds groups of up to 32).
  public init(n: Int, m: Int) throws(PruneError) {
    guard m >= 2, m <= 32, n >= 1, n < m else {
      throw PruneError("pattern \(n):\(m) is not N:M with 1 <= N < M <= 32")
    }
    self.n = n
    self.m = m
  }
  /// Parses "2:4".
  public init(parsing s: String) throws(PruneError) {
    let (n, m) = try integerPair(s, ":", "--pattern '\(s)': expected N:M, e.g. 2:4")
    try self.init(n: n, m: m)
  }
  public var description: String { "\(n):\(m)" }
}

/// "A<sep>B" as two integers, or `error`.
private func integerPair(_ s: String, _ separator: Character, _ error: String) throws(PruneError) -> (Int, Int) {
  let parts = s.split(separator: separator, omittingEmptySubsequences: false)
  guard parts.count == 2, let a = Int(parts[0]), let b = Int(parts[1]) else { throw PruneError(error) }
  return (a, b)
}

/// A block shape on the M x K matrix view: `rows` output channels by `cols` columns.
public struct BlockShape2D: Sendable, Equatable, CustomStringConvertible {
  public let rows: Int, cols: Int
  public init(rows: Int, cols: Int) throws(PruneError) {
    guard rows >= 1, cols >= 1, rows * cols >= 2, rows <= 64, cols <= 64 else {
      throw PruneError("block \(rows)x\(cols): need 1..64 on each side and at least 2 values")
    }
    self.rows = rows
    self.cols = cols
  }
  /// Parses "4x1".
  public init(parsing s: String) throws(PruneError) {
    let (r, c) = try integerPair(s, "x", "--block '\(s)': expected ROWSxCOLS, e.g. 4x1")
    try self.init(rows: r, cols: c)
  }
  public var description: String { "\(rows)x\(cols)" }
}

/// What to prune and how.
public struct PruneOptions: Sendable {
  public var method: PruneMethod
  /// Fraction of weights to zero, in [0, 1). For `nm` it is implied by the pattern (1 − N/M)
  /// and may be left nil.
  public var sparsity: Double?
  public var scope: PruneScope = .layer
  /// Leave the first and the last prunable layer (in graph order: the stem convolution and the
  /// classifier) dense. On by default.
  public var skipFirstLast = true
  /// For `nm`; 2:4 when nil.
  public var pattern: NMPattern?
  /// For `nm`: blocks of this many output rows keep the same N of every M (the kept positions
  /// maximise the block's summed |w|), so a kernel loads each kept X row once for the whole block
  /// (the shared-pattern N:M kernels take blocks of 8). 1 or nil: every row chooses its own.
  public var shareRows: Int?
  /// For `block`; 4x1 when nil.
  public var block: BlockShape2D?
  /// Channel methods only: remove pruned filters and the matching inputs of the layers that
  /// read them, instead of leaving zeros.
  public var shrink = false
  /// Seed of `random`.
  public var seed: UInt64 = 0
  /// Channel methods: prune only the channel groups that `--shrink` can remove physically (a
  /// transformer's heads and MLP neurons, not its residual stream); false prunes every group,
  /// the others in place.
  public var onlyShrinkable = false
  /// Channel methods, `--scope layer`: where the sparsity would remove every channel of a group
  /// (cutting the network), keep its best channel and say so in the report instead of refusing
  /// (`--keep-one-per-group`, for sweeps to high sparsities). Off: such a sparsity is an error.
  public var keepOnePerGroup = false
  /// Inputs run through the model to collect activation statistics (`wanda`): each entry is one
  /// run's feeds.
  public var calibration: [[String: Tensor]] = []

  public init(method: PruneMethod, sparsity: Double? = nil) {
    self.method = method
    self.sparsity = sparsity
  }

  /// The pattern in force for `nm`.
  var nmPattern: NMPattern { pattern ?? NMPattern.twoFour }
  var blockShape: BlockShape2D { block ?? BlockShape2D.fourByOne }

  /// Refuses combinations that make no sense, with the reason.
  public func validate() throws(PruneError) {
    if let s = sparsity {
      guard s.isFinite, s >= 0, s < 1 else { throw PruneError("--sparsity must be in [0, 1), got \(s)") }
    }
    if pattern != nil, method != .nm, !method.isCalibrated {
      throw PruneError("--pattern applies only to --method nm, wanda and sparsegpt")
    }
    if method.isCalibrated {
      if calibration.isEmpty {
        throw PruneError("--method \(method.rawValue) needs calibration inputs: --calibration NAME=FILE.npy")
      }
      if scope == .global, !method.isChannel {
        throw PruneError("--scope global does not apply to \(method.rawValue): it prunes layer by layer")
      }
    } else if !calibration.isEmpty {
      throw PruneError("--calibration applies only to --method wanda, sparsegpt and channel-taylor")
    }
    if block != nil, method != .block { throw PruneError("--block applies only to --method block") }
    if keepOnePerGroup, !method.isChannel {
      throw PruneError("--keep-one-per-group applies only to the channel methods")
    }
    if let r = shareRows {
      guard method == .nm || ((method == .wanda || method == .sparsegpt) && pattern != nil) else {
        throw PruneError("--share-rows applies only to N:M pruning: --method nm, or wanda/sparsegpt with --pattern")
      }
      guard (1...64).contains(r) else { throw PruneError("--share-rows must be in 1...64, got \(r)") }
    }
    if onlyShrinkable, !method.isChannel {
      throw PruneError("--groups applies only to the channel methods (channel-l1, channel-fpgm, channel-taylor)")
    }
    if shrink, !method.isChannel {
      throw PruneError("--shrink applies only to the channel methods (channel-l1, channel-fpgm, channel-taylor)")
    }
    switch method {
    case .nm, .wanda where pattern != nil, .sparsegpt where pattern != nil:
      if scope == .global { throw PruneError("--scope global does not apply to nm: every group keeps N of M") }
      let p = nmPattern
      if let s = sparsity, abs(s - (1 - Double(p.n) / Double(p.m))) > 1e-9 {
        throw PruneError(
          "--sparsity \(s) contradicts pattern \(p) (which is \(1 - Double(p.n) / Double(p.m)) sparse); leave --sparsity out")
      }
    default:
      if sparsity == nil { throw PruneError("--sparsity is required for --method \(method.rawValue)") }
    }
  }

  /// Whether an N:M pattern decides (`nm`, or `wanda` with `--pattern`).
  var usesPattern: Bool { method == .nm || (method.isCalibrated && pattern != nil) }

  /// The sparsity in force (the pattern's for `nm`).
  var target: Double {
    usesPattern ? 1 - Double(nmPattern.n) / Double(nmPattern.m) : (sparsity ?? 0)
  }
}

extension NMPattern {
  static let twoFour = NMPattern(checkedN: 2, m: 4)
  private init(checkedN n: Int, m: Int) {
    self.n = n
    self.m = m
  }
}

extension BlockShape2D {
  static let fourByOne = BlockShape2D(checkedRows: 4, cols: 1)
  private init(checkedRows rows: Int, cols: Int) {
    self.rows = rows
    self.cols = cols
  }
}

/// Why a model cannot be pruned as asked: one line for the user.
public struct PruneError: Error, CustomStringConvertible, Sendable, Equatable {
  public let message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}

extension PruneOptions {
  /// Options from their text forms (`sparrow prune`'s flags, the C ABI's JSON), validated.
  public init(
    parsing method: String, sparsity: Double?, scope: String = "layer", skipFirstLast: Bool = true,
    pattern: String? = nil, block: String? = nil, shrink: Bool = false, seed: UInt64 = 0, groups: String = "all",
    shareRows: Int? = nil, calibration: [[String: Tensor]] = [], keepOnePerGroup: Bool = false
  ) throws(PruneError) {
    guard let m = PruneMethod(rawValue: method) else {
      throw PruneError(
        "unknown method '\(method)' (\(PruneMethod.allCases.map(\.rawValue).joined(separator: ", ")))")
    }
    guard let sc = PruneScope(rawValue: scope) else { throw PruneError("unknown scope '\(scope)' (layer, global)") }
    self.init(method: m, sparsity: sparsity)
    self.scope = sc
    self.skipFirstLast = skipFirstLast
    self.shrink = shrink
    self.seed = seed
    self.calibration = calibration
    self.keepOnePerGroup = keepOnePerGroup
    if let p = pattern { self.pattern = try NMPattern(parsing: p) }
    if let b = block { self.block = try BlockShape2D(parsing: b) }
    self.shareRows = shareRows
    switch groups {
    case "all": onlyShrinkable = false
    case "shrinkable": onlyShrinkable = true
    default: throw PruneError("unknown --groups '\(groups)' (all, shrinkable)")
    }
    try validate()
  }
}
