/// How weighted layers choose their format.
public enum FormatPolicy: Sendable, Equatable {
  /// Time the candidate formats on this machine at the layer's real shape; keep the fastest.
  case auto
  /// Always this format kind (falling back to dense where the weight cannot take it).
  case fixed(WeightFormat.Kind)
}

/// How k x k convolutions (groups = 1) with a sparse weight (at least half zeros, format policy
/// auto) are computed. For int8 (QLinearConv on the kernels) k x k layers: `measure` times the
/// direct int8 convolution (Kernels/qconv) against the GEMM path when the format policy is auto,
/// `im2col` keeps the GEMM, `direct` and `pixel` force the direct int8 kernel whatever the format
/// policy.
public enum ConvAlgorithm: String, Sendable, CaseIterable {
  case measure, im2col, direct
  /// The pixel-major dense direct form (Kernels/conv/dconv/dconv.h), forced for every k x k
  /// convolution with groups = 1.
  case pixel
}

/// How MatMul/Gemm layers with a constant weight are computed.
public enum LinearAlgorithm: String, Sendable, CaseIterable {
  /// Time the pixel-major kernel on the row-major tokens (`PanelLinear`) against the step of
  /// the format chosen for the weight, where it can pay (below 75% zeros, or zeros shared by
  /// 16-output panels); keep the faster.
  case measure
  /// Always the chosen format's step (OpenBLAS when dense, the sparse kernels otherwise).
  case kernels
  /// Always the pixel-major kernel (Gemm with transA = 1 keeps the kernels).
  case panel
}

/// Options for planning.
public struct PlanOptions: Sendable {
  public var threads: Int
  public var format: FormatPolicy
  /// Refuse plans whose buffers would exceed this many bytes (default 8 GiB).
  public var maxBytes: Int
  /// Refuse any one tensor larger than this, checked before it is computed, also when it is
  /// folded at plan time from the values of plan-time inputs (a server sets its session limit:
  /// a request's shape value cannot make it allocate more while planning).
  public var maxTensorBytes: Int = .max
  /// Where format timings are remembered between plans and processes (nil: time every plan).
  public var formatCache: FormatCache?
  /// k x k convolutions with sparse weights: measure im2col + SpMM against the direct sparse
  /// convolution (default), or always use one of them (experiments, tests).
  public var convAlgorithm: ConvAlgorithm = .measure
  /// MatMul/Gemm layers with a constant weight: measure the pixel-major form against the
  /// format's step (default), or force one (experiments, tests).
  public var linearAlgorithm: LinearAlgorithm = .measure
  /// Convolutions the `zero` and `topk` gate modes may skip input channels of (the mode itself
  /// is chosen per run, `Session.gate`).
  public var gateLayers: GateLayers = .default
  /// MatMul/Gemm layers with a constant weight get the input gate (`GatedLinearStep`: the
  /// threshold gate, and `zero`/`topk` per token): every such layer, or those `gateLayers`
  /// names. Each keeps its weight a second time, input-channel-major. Off by default; layers
  /// named in `gateLayers` are gated either way.
  public var gateLinears = false
  public init(
    threads: Int? = nil, format: FormatPolicy = .auto, maxBytes: Int = 8 << 30, formatCache: FormatCache? = .shared
  ) {
    self.threads = Threads.resolve(threads)
    self.format = format
    self.maxBytes = maxBytes
    self.formatCache = formatCache
  }
}

/// Per weighted layer: what `inspect` shows.
public struct LayerReport: Sendable, Codable {
  public var node: String
  public var op: String
  public var m: Int, k: Int, n: Int
  public var zeroFraction: Double
  public var format: String
  public var kernel: String
  /// Measured candidates: format -> fastest of a few runs, milliseconds.
  public var measured: [String: Double]
  /// True when `measured` came from the format-timing cache instead of timing now.
  public var measuredFromCache = false
  /// The weight's sparsity profile (zero fraction, N:M conformance, block fill, empty rows/columns).
  public var profile: SparsityProfile? = nil
  /// How the runtime gate may skip this layer's channels ("zero/topk", "learned-out",
  /// "learned-in", joined by "+"), or nil.
  public var gate: String? = nil
  /// Bytes the layer's weights take as the chosen format stores them (values, indices, and the
  /// per-channel sums, scales and biases the int8 epilogue reads), where the step reports it
  /// (the int8 layers); nil otherwise.
  public var storedBytes: Int? = nil
}
