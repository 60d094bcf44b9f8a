internal import SparrowKernels

/// What happens to `W·X` before it is stored: a bias per output row, then a clamp.
public struct Epilogue: Sendable {
  public enum Activation: Sendable, Equatable {
    case none, relu, relu6
    case clamp(Float, Float)
    var range: (Float, Float) {
      switch self {
      case .none: return (-.infinity, .infinity)
      case .relu: return (0, .infinity)
      case .relu6: return (0, 6)
      case .clamp(let lo, let hi): return (lo, hi)
      }
    }
  }
  public var bias: [Float]?
  public var activation: Activation
  public init(bias: [Float]? = nil, activation: Activation = .none) {
    self.bias = bias
    self.activation = activation
  }
}

/// Channels to compute (for the runtime-pruning gate). Output rows not listed are written as
/// exact zeros; input channels not listed are treated as zero and never read.
public struct ActiveChannels: Sendable {
  /// Strictly increasing output rows, or nil for all.
  public var outputRows: [UInt32]?
  /// Strictly increasing input channels, or nil for all. Channel `c` owns columns
  /// `c*kPerChannel ..< (c+1)*kPerChannel` of W (rows of X).
  public var inputChannels: [UInt32]?
  public var kPerChannel: Int
  public init(outputRows: [UInt32]? = nil, inputChannels: [UInt32]? = nil, kPerChannel: Int = 1) {
    self.outputRows = outputRows
    self.inputChannels = inputChannels
    self.kPerChannel = kPerChannel
  }
  public static let all = ActiveChannels()
}

/// Runs `Y = clamp(W·X + bias)`, reusing its workspace between calls. One caller at a time.
public final class SpMMRunner {
  public let threads: Int
  public let backend: Threads.Backend
  private var workspace: UnsafeMutableRawPointer?
  private var workspaceBytes = 0

  public init(threads: Int? = nil, backend: Threads.Backend? = nil) {
    self.threads = Threads.resolve(threads)
    self.backend = backend ?? Threads.defaultBackend
  }

  deinit { workspace?.deallocate() }

  private func workspace(bytes: Int) -> UnsafeMutableRawPointer? {
    if bytes == 0 { return nil }
    if bytes > workspaceBytes {
      workspace?.deallocate()
      workspace = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
      workspaceBytes = bytes
    }
    return workspace
  }

  /// `x`: K x N row-major with row stride `xStride` floats; `y`: M x N with stride `yStride`.
  public func run(
    _ w: PackedMatrix, x: UnsafePointer<Float>, xStride: Int? = nil, n: Int, y: UnsafeMutablePointer<Float>,
    yStride: Int? = nil, epilogue: Epilogue = Epilogue(), active: ActiveChannels = .all
  ) throws(KernelError) {
    if let b = epilogue.bias, b.count != w.rows {
      throw KernelError(kind: .invalidArgument, message: "bias has \(b.count) values for \(w.rows) rows")
    }
    let wsBytes = sparrow_spmm_workspace_bytes(
      w.handle, n, active.outputRows != nil ? 1 : 0, active.inputChannels != nil ? 1 : 0)
    let ws = workspace(bytes: wsBytes)
    let (lo, hi) = epilogue.activation.range
    let status: sparrow_status = epilogue.bias.withOptionalPointer { bias in
      active.outputRows.withOptionalPointer { rows in
        active.inputChannels.withOptionalPointer { chans in
          var call = sparrow_spmm_call(
            x: x, x_stride: (xStride ?? n) &* 4, y: y, y_stride: (yStride ?? n) &* 4, n: n, bias: bias,
            clamp_lo: lo, clamp_hi: hi, out_rows: rows, n_out_rows: active.outputRows?.count ?? 0,
            in_channels: chans, n_in_channels: active.inputChannels?.count ?? 0,
            k_per_channel: active.kPerChannel, workspace: ws, workspace_bytes: wsBytes, x_window: nil)
          return execute(w, &call)
        }
      }
    }
    try check(status, "multiply by \(w.rows)x\(w.cols) \(w.format) matrix, n = \(n)")
  }

  private func execute(_ w: PackedMatrix, _ call: inout sparrow_spmm_call) -> sparrow_status {
    SpMMRunner.execute(w, &call, threads: threads, backend: backend)
  }

  /// Workspace bytes `w` needs for `n` columns, with or without active-channel lists.
  static func workspaceBytes(_ w: PackedMatrix, n: Int, activeRows: Bool = false, activeChannels: Bool = false) -> Int {
    sparrow_spmm_workspace_bytes(w.handle, n, activeRows ? 1 : 0, activeChannels ? 1 : 0)
  }

  /// The multiply with caller-owned workspace (for plan steps, which are shared between
  /// sessions and keep no state). Active lists as in `ActiveChannels`, nil for all.
  static func run(
    _ w: PackedMatrix, x: UnsafePointer<Float>, xStride: Int, n: Int, y: UnsafeMutablePointer<Float>, yStride: Int,
    bias: UnsafePointer<Float>?, lo: Float, hi: Float, workspace: UnsafeMutableRawPointer?, workspaceBytes: Int,
    threads: Int, outRows: UnsafePointer<UInt32>? = nil, outRowCount: Int = 0,
    inChannels: UnsafePointer<UInt32>? = nil, inChannelCount: Int = 0, kPerChannel: Int = 1,
    window: UnsafePointer<sparrow_dwconv_shape>? = nil
  ) throws(KernelError) {
    var call = sparrow_spmm_call(
      x: x, x_stride: xStride &* 4, y: y, y_stride: yStride &* 4, n: n, bias: bias, clamp_lo: lo, clamp_hi: hi,
      out_rows: outRows, n_out_rows: outRowCount, in_channels: inChannels, n_in_channels: inChannelCount,
      k_per_channel: kPerChannel, workspace: workspace, workspace_bytes: workspaceBytes, x_window: window)
    try check(execute(w, &call, threads: threads, backend: Threads.defaultBackend), "multiply by \(w.rows)x\(w.cols) \(w.format) matrix")
  }

  /// Check, prepare, the tiles on the thread back end in force (`TileRunner`), finish. The
  /// matrix's kernel was bound when it was packed.
  private static func execute(
    _ w: PackedMatrix, _ call: inout sparrow_spmm_call, threads: Int, backend: Threads.Backend
  ) -> sparrow_status {
    withUnsafeMutablePointer(to: &call) { call in
      let status = sparrow_spmm_check(w.handle, call)
      if status != SPARROW_OK { return status }
      var plan = sparrow_spmm_plan()
      sparrow_spmm_prepare(&plan, w.handle, call, Int32(clamping: threads))
      withUnsafeMutablePointer(to: &plan) { p in
        TileRunner.run(tasks: p.pointee.tiles, threads: threads, backend: backend, sparrow_spmm_task, p)
        sparrow_spmm_finish(p)
      }
      return SPARROW_OK
    }
  }

  /// Array convenience: `x` is K x N, returns M x N.
  public func multiply(
    _ w: PackedMatrix, x: [Float], n: Int, epilogue: Epilogue = Epilogue(), active: ActiveChannels = .all
  ) throws(KernelError) -> [Float] {
    guard n > 0, x.count == w.cols * n else {
      throw KernelError(kind: .invalidArgument, message: "x has \(x.count) values, expected \(w.cols) x \(n)")
    }
    var y = [Float](repeating: 0, count: w.rows * n)
    try x.withUnsafeBufferPointer { (xb) throws(KernelError) in
      try y.withUnsafeMutableBufferPointer { (yb) throws(KernelError) in
        try run(w, x: xb.baseAddress!, n: n, y: yb.baseAddress!, epilogue: epilogue, active: active)
      }
    }
    return y
  }

  /// A fully connected layer in ONNX's layout: `input` is `[batch, K]`, the result
  /// `[batch, M]`. Batch 1 runs as N = 1 directly; larger batches are transposed to K x batch
  /// around the multiply (cheap next to the multiply itself).
  public func linear(
    _ w: PackedMatrix, input: [Float], batch: Int, epilogue: Epilogue = Epilogue(), active: ActiveChannels = .all
  ) throws(KernelError) -> [Float] {
    guard batch > 0, input.count == batch * w.cols else {
      throw KernelError(kind: .invalidArgument, message: "input has \(input.count) values, expected \(batch) x \(w.cols)")
    }
    if batch == 1 { return try multiply(w, x: input, n: 1, epilogue: epilogue, active: active) }
    let k = w.cols, m = w.rows
    var xt = [Float](repeating: 0, count: k * batch)
    for b in 0..<batch { for j in 0..<k { xt[j * batch + b] = input[b * k + j] } }
    let yt = try multiply(w, x: xt, n: batch, epilogue: epilogue, active: active)
    var out = [Float](repeating: 0, count: batch * m)
    for i in 0..<m { for b in 0..<batch { out[b * m + i] = yt[i * batch + b] } }
    return out
  }
}

/// A pointer handed to worker closures; the caller keeps the pointee alive until they finish.
struct UnsafeSendable<T>: @unchecked Sendable {
  let value: T
  init(_ v: T) { value = v }
}

extension Optional where Wrapped == [Float] {
  /// nil for nil, never a dangling base address for an empty array's storage.
  func withOptionalPointer<R, E: Error>(_ body: (UnsafePointer<Float>?) throws(E) -> R) throws(E) -> R {
    guard let a = self else { return try body(nil) }
    return try a.withUnsafeBufferPointer { (b) throws(E) in try body(b.baseAddress) }
  }
}

extension Optional where Wrapped == [UInt32] {
  func withOptionalPointer<R, E: Error>(_ body: (UnsafePointer<UInt32>?) throws(E) -> R) throws(E) -> R {
    guard let a = self else { return try body(nil) }
    return try a.withUnsafeBufferPointer { (b) throws(E) in try body(b.baseAddress) }
  }
}
