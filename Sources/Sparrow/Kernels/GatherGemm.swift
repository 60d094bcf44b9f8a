internal import SparrowKernels

/// The gathered GEMM (Kernels/gate/gather.c, the convolution gate's kernels): `Y = clamp(W·X +
/// bias) · scale` over the listed output rows of a row-major `W` (`m x k`) and the listed input
/// channels only, reading W in place, so the work is proportional to the kept rows times the kept
/// channels. X is `k x n` rows or a convolution window over one image (only the kept channels'
/// im2col rows are built). Unlisted rows are written as exact zeros. Callers check the lists
/// (strictly increasing, in range): the call cannot fail.
enum GatherGemm {
  /// Workspace bytes for an `m x k` weight (64-byte aligned when passed).
  static func workspaceBytes(m: Int, k: Int) -> Int { sparrow_gather_workspace_bytes(m, k) }

  /// Every registered kernel (index in the gate list, name, runnable here).
  static var microkernels: [(index: Int, name: String, runnable: Bool)] {
    (0..<sparrow_gate_ukernel_count()).filter { sparrow_gate_ukernel_kind($0) == Int32(SPARROW_GATE_ROWS.rawValue) }
      .map { i in (Int(i), String(cString: sparrow_gate_ukernel_name(i)), sparrow_gate_ukernel_runnable(i) != 0) }
  }

  /// The kernel the active ISA uses.
  static var kernelName: String { String(cString: sparrow_gate_ukernel_name(sparrow_gate_ukernel_auto(SPARROW_GATE_ROWS))) }

  /// `x` is one image read through `im2col`'s window (all its channels), or, without one, `k`
  /// rows of `xStride` floats. Lists nil: all.
  static func run(
    w: UnsafePointer<Float>, m: Int, k: Int, n: Int, outRows: UnsafePointer<UInt32>?, outRowCount: Int,
    inChannels: UnsafePointer<UInt32>?, inChannelCount: Int, kPerChannel: Int, x: UnsafePointer<Float>, xStride: Int,
    im2col: Im2col?, y: UnsafeMutablePointer<Float>, yStride: Int,
    bias: UnsafePointer<Float>?, scale: UnsafePointer<Float>?, lo: Float, hi: Float, threads: Int,
    workspace: UnsafeMutableRawPointer, microkernel: Int? = nil
  ) {
    func go(_ window: UnsafePointer<sparrow_dwconv_shape>?) {
      run(
        w: w, m: m, k: k, n: n, outRows: outRows, outRowCount: outRowCount, inChannels: inChannels,
        inChannelCount: inChannelCount, kPerChannel: kPerChannel, x: x, xStride: xStride, window: window, y: y,
        yStride: yStride, bias: bias, scale: scale, lo: lo, hi: hi, threads: threads, workspace: workspace,
        microkernel: microkernel)
    }
    if let im2col { im2col.withWindow(channels: im2col.shape.channels) { go($0) } } else { go(nil) }
  }

  private static func run(
    w: UnsafePointer<Float>, m: Int, k: Int, n: Int, outRows: UnsafePointer<UInt32>?, outRowCount: Int,
    inChannels: UnsafePointer<UInt32>?, inChannelCount: Int, kPerChannel: Int, x: UnsafePointer<Float>, xStride: Int,
    window: UnsafePointer<sparrow_dwconv_shape>?, y: UnsafeMutablePointer<Float>, yStride: Int,
    bias: UnsafePointer<Float>?, scale: UnsafePointer<Float>?, lo: Float, hi: Float, threads: Int,
    workspace: UnsafeMutableRawPointer, microkernel: Int? = nil
  ) {
    var call = sparrow_gather_call(
      m: m, k: k, n: n, w: w, out_rows: outRows, n_out_rows: outRowCount, in_channels: inChannels,
      n_in_channels: inChannelCount, k_per_channel: kPerChannel, x: x, x_stride: xStride &* 4, x_window: window, y: y,
      y_stride: yStride &* 4, bias: bias, scale: scale, lo: lo, hi: hi, ukernel: microkernel ?? Int.max,
      workspace: workspace)
    withUnsafePointer(to: &call) { cp in
      var plan = sparrow_gather_plan()
      sparrow_gather_prepare(&plan, cp, Int32(clamping: threads))
      withUnsafeMutablePointer(to: &plan) { p in
        TileRunner.run(tasks: p.pointee.tasks, threads: threads, sparrow_gather_task, p)
        sparrow_gather_finish(p)
      }
    }
  }
}
