internal import SparrowKernels

/// A k x k convolution (groups = 1) computed directly from its sparse weight, without im2col
/// (Kernels/conv/direct.c): the input is padded once, then each output row is a sum of shifted
/// input rows, one per nonzero weight. Immutable once built: one value serves many sessions,
/// each passing its own workspace.
public final class DirectSparseConv: @unchecked Sendable {
  let handle: OpaquePointer
  public let shape: DepthwiseShape
  public let outputChannels: Int

  /// `weights` is `[cout, shape.channels, kh, kw]`, dense with zeros (they are dropped).
  /// `dense`: keep every weight and run the register-blocked dense kernels instead
  /// (Kernels/conv/dconv: panels of output channels straight from the padded planes), for
  /// layers with few zeros; `microkernel` then indexes `denseMicrokernels`. `pixel` (implies
  /// dense): the pixel-major dense kernels (blocks of 6 output pixels x 16 output channels, for
  /// narrow and strided outputs); `microkernel` then indexes `pixelMicrokernels`.
  public init(_ shape: DepthwiseShape, outputChannels cout: Int, weights: [Float], dense: Bool = false, pixel: Bool = false)
    throws(KernelError)
  {
    guard var s = shape.c, cout > 0 else {
      throw KernelError(kind: .invalidArgument, message: "direct convolution: negative size or no output channel")
    }
    guard weights.count == cout * shape.channels * shape.kh * shape.kw else {
      throw KernelError(kind: .invalidArgument, message: "direct convolution: weight has \(weights.count) values")
    }
    var h: OpaquePointer? = nil
    try check(
      weights.withUnsafeBufferPointer {
        pixel
          ? sparrow_direct_conv_create_pixel(&s, cout, $0.baseAddress!, &h)
          : dense
            ? sparrow_direct_conv_create_dense(&s, cout, $0.baseAddress!, &h)
            : sparrow_direct_conv_create(&s, cout, $0.baseAddress!, &h)
      }, "direct convolution")
    guard let h else { throw KernelError(kind: .unknown, message: "direct convolution: no handle") }
    handle = h
    self.shape = shape
    outputChannels = cout
  }

  deinit { sparrow_direct_conv_free(handle) }

  public var workspaceBytes: Int { sparrow_direct_conv_workspace_bytes(handle) }
  /// Dense mode (`init(dense: true)`).
  public var isDense: Bool { sparrow_direct_conv_is_dense(handle) != 0 }
  /// Pixel-major dense mode (`init(pixel: true)`).
  public var isPixel: Bool { sparrow_direct_conv_is_pixel(handle) != 0 }
  /// Pixel-major mode: the weight columns (input channel x tap) kept over all 16-channel panels;
  /// fewer than panels x K where panels share zero columns (their FMAs are skipped).
  public var pixelColumns: Int { Int(sparrow_direct_conv_pixel_columns(handle)) }

  /// The dense kernels: (index, name, runnable here).
  public static var denseMicrokernels: [(index: Int, name: String, runnable: Bool)] {
    (0..<sparrow_dconv_ukernel_count()).map {
      (Int($0), String(cString: sparrow_dconv_ukernel_name($0)), sparrow_dconv_ukernel_runnable($0) != 0)
    }
  }
  /// The dense kernel the active ISA runs.
  public static var denseKernelName: String { String(cString: sparrow_dconv_ukernel_name(sparrow_dconv_ukernel_auto())) }
  /// Output channels per pixel-major weight panel (SPARROW_PCONV_NR).
  public static let pixelPanelRows = 16
  /// The pixel-major dense kernels: (index, name, runnable here).
  public static var pixelMicrokernels: [(index: Int, name: String, runnable: Bool)] {
    (0..<sparrow_pconv_ukernel_count()).map {
      (Int($0), String(cString: sparrow_pconv_ukernel_name($0)), sparrow_pconv_ukernel_runnable($0) != 0)
    }
  }
  /// The pixel-major kernel the active ISA runs.
  public static var pixelKernelName: String { String(cString: sparrow_pconv_ukernel_name(sparrow_pconv_ukernel_auto())) }
  public var nonzeros: Int { sparrow_direct_conv_nnz(handle) }

  /// Workspace bytes for a run with these active-channel lists (`workspaceBytes` when both are nil).
  public func workspaceBytes(active: ActiveChannels) -> Int {
    sparrow_direct_conv_lists_workspace_bytes(
      handle, active.outputRows != nil ? 1 : 0, active.inputChannels != nil ? 1 : 0)
  }

  /// One image: `x` is `[channels, h, w]`, `y` `[cout, ho, wo]`. `microkernel` forces a depthwise
  /// row kernel (tests); nil picks the active ISA's. `active` (for the runtime-pruning gate):
  /// `outputRows` are the output channels to compute (the others are written as exact zeros),
  /// `inputChannels` the input channels to read (the others count as zero and are never read);
  /// `kPerChannel` is not used here. With lists the workspace is `workspaceBytes(active:)`.
  func run(
    x: UnsafePointer<Float>, bias: UnsafePointer<Float>?, lo: Float, hi: Float, y: UnsafeMutablePointer<Float>,
    workspace: UnsafeMutableRawPointer, threads: Int, microkernel: Int? = nil, active: ActiveChannels = .all
  ) throws(KernelError) {
    try active.outputRows.withOptionalPointer { (outs) throws(KernelError) in
      try active.inputChannels.withOptionalPointer { (ins) throws(KernelError) in
        try runLists(
          x: x, bias: bias, lo: lo, hi: hi, y: y, workspace: workspace, threads: threads, microkernel: microkernel,
          outRows: outs, outRowCount: active.outputRows?.count ?? 0, inChannels: ins,
          inChannelCount: active.inputChannels?.count ?? 0)
      }
    }
  }

  /// The runtime gate's form: lists as pointers (nil for all), no allocation. `workspace` has
  /// `workspaceBytes(active:)` bytes for lists of this kind. The phases (pad the input planes,
  /// then the output rows) run on `TileRunner`.
  func runLists(
    x: UnsafePointer<Float>, bias: UnsafePointer<Float>?, lo: Float, hi: Float, y: UnsafeMutablePointer<Float>,
    workspace: UnsafeMutableRawPointer, threads: Int, microkernel: Int? = nil, outRows: UnsafePointer<UInt32>?,
    outRowCount: Int, inChannels: UnsafePointer<UInt32>?, inChannelCount: Int
  ) throws(KernelError) {
    guard lo <= hi else { throw KernelError(kind: .invalidArgument, message: "clamp range [\(lo), \(hi)] is empty") }
    if let k = microkernel,
      k < 0
        || (isPixel
          ? sparrow_pconv_ukernel_runnable(k) : isDense ? sparrow_dconv_ukernel_runnable(k) : sparrow_dwconv_ukernel_runnable(k))
          == 0
    {
      let kind = isPixel ? "pixel-major direct-convolution" : isDense ? "dense direct-convolution" : "depthwise"
      throw KernelError(kind: .unsupported, message: "\(kind) microkernel \(k) cannot run on this CPU")
    }
    let wsBytes = sparrow_direct_conv_lists_workspace_bytes(handle, outRows != nil ? 1 : 0, inChannels != nil ? 1 : 0)
    var lists = sparrow_direct_conv_lists(
      out_channels: outRows, n_out_channels: outRowCount, in_channels: inChannels, n_in_channels: inChannelCount)
    let what = outRows != nil || inChannels != nil ? "direct convolution with active channels" : "direct convolution"
    try check(sparrow_direct_conv_lists_check(handle, &lists, workspace, wsBytes), what)
    let nt = max(1, threads)
    var plan = sparrow_direct_conv_plan()
    sparrow_direct_conv_prepare(
      &plan, handle, &lists, x, bias, lo, hi, y, workspace, Int32(clamping: nt),
      microkernel ?? -1 /* SPARROW_DWCONV_AUTO: the kernel bound at creation */)
    withUnsafeMutablePointer(to: &plan) { p in
      TileRunner.run(tasks: p.pointee.pad_tasks, threads: nt, sparrow_direct_conv_pad_task, p)
      TileRunner.run(tasks: p.pointee.row_tasks, threads: nt, sparrow_direct_conv_rows_task, p)
      sparrow_direct_conv_finish(p)
    }
  }

  /// Workspace bytes for `images` images run as one (`runBatch`): that many sets of padded
  /// planes in pixel mode, one image's otherwise.
  public func batchWorkspaceBytes(images: Int) -> Int {
    sparrow_direct_conv_batch_workspace_bytes(handle, max(images, 1))
  }

  /// `images` consecutive images (`x` `[images, channels, h, w]`, `y` `[images, cout, ho, wo]`):
  /// in pixel mode one multiply whose 6-pixel blocks of every image share each weight panel's
  /// pass; the other modes run image by image. `workspace` has `batchWorkspaceBytes(images:)`.
  /// `residual` (y's layout; dense and pixel modes, no clamp: `lo`/`hi` infinite) is added to
  /// the output by the rows tasks while it is in cache, then ReLU when `relu`
  /// (`sparrow_direct_conv_set_residual`): a residual block's Add and Relu fused.
  func runBatch(
    images: Int, x: UnsafePointer<Float>, bias: UnsafePointer<Float>?, lo: Float, hi: Float,
    y: UnsafeMutablePointer<Float>, workspace: UnsafeMutableRawPointer, threads: Int, microkernel: Int? = nil,
    residual: UnsafePointer<Float>? = nil, relu: Bool = false
  ) throws(KernelError) {
    if let residual {
      guard isDense else { throw KernelError(kind: .unsupported, message: "a fused residual needs a dense direct convolution") }
      guard lo == -.infinity, hi == .infinity else {
        throw KernelError(kind: .invalidArgument, message: "a fused residual comes before the clamp")
      }
      if let k = microkernel,
        k < 0 || (isPixel ? sparrow_pconv_ukernel_runnable(k) : sparrow_dconv_ukernel_runnable(k)) == 0
      {
        throw KernelError(kind: .unsupported, message: "direct-convolution microkernel \(k) cannot run on this CPU")
      }
      let nt = max(1, threads), s = shape
      // Pixel mode: the batch as one multiply; channel-major dense mode: image by image.
      let (calls, per) = isPixel ? (1, images) : (images, 1)
      for i in 0..<calls {
        let inOff = i * s.channels * s.h * s.w, outOff = i * outputChannels * s.ho * s.wo
        var plan = sparrow_direct_conv_plan()
        if isPixel {
          sparrow_direct_conv_prepare_batch(
            &plan, handle, per, x + inOff, bias, lo, hi, y + outOff, workspace, Int32(clamping: nt), microkernel ?? -1)
        } else {
          sparrow_direct_conv_prepare(
            &plan, handle, nil, x + inOff, bias, lo, hi, y + outOff, workspace, Int32(clamping: nt), microkernel ?? -1)
        }
        try check(sparrow_direct_conv_set_residual(&plan, residual + outOff, relu ? 1 : 0), "direct convolution")
        withUnsafeMutablePointer(to: &plan) { p in
          TileRunner.run(tasks: p.pointee.pad_tasks, threads: nt, sparrow_direct_conv_pad_task, p)
          TileRunner.run(tasks: p.pointee.row_tasks, threads: nt, sparrow_direct_conv_rows_task, p)
        }
      }
      return
    }
    guard isPixel, images > 1 else {
      let s = shape
      for i in 0..<images {
        try run(
          x: x + i * s.channels * s.h * s.w, bias: bias, lo: lo, hi: hi, y: y + i * outputChannels * s.ho * s.wo,
          workspace: workspace, threads: threads, microkernel: microkernel)
      }
      return
    }
    guard lo <= hi else { throw KernelError(kind: .invalidArgument, message: "clamp range [\(lo), \(hi)] is empty") }
    if let k = microkernel, k < 0 || sparrow_pconv_ukernel_runnable(k) == 0 {
      throw KernelError(kind: .unsupported, message: "pixel-major direct-convolution microkernel \(k) cannot run on this CPU")
    }
    let nt = max(1, threads)
    var plan = sparrow_direct_conv_plan()
    sparrow_direct_conv_prepare_batch(
      &plan, handle, images, x, bias, lo, hi, y, workspace, Int32(clamping: nt), microkernel ?? -1)
    withUnsafeMutablePointer(to: &plan) { p in
      TileRunner.run(tasks: p.pointee.pad_tasks, threads: nt, sparrow_direct_conv_pad_task, p)
      TileRunner.run(tasks: p.pointee.row_tasks, threads: nt, sparrow_direct_conv_rows_task, p)
    }
  }

  /// Array convenience for a batch (tests).
  public func runBatch(
    images: Int, x: [Float], bias: [Float]? = nil, lo: Float = -.infinity, hi: Float = .infinity, threads: Int = 1,
    microkernel: Int? = nil
  ) throws(KernelError) -> [Float] {
    let s = shape
    guard images >= 1, x.count == images * s.channels * s.h * s.w, bias.map({ $0.count == outputChannels }) ?? true
    else {
      throw KernelError(kind: .invalidArgument, message: "direct convolution: x or bias has the wrong size")
    }
    var y = [Float](repeating: .nan, count: images * outputChannels * s.ho * s.wo)
    let bytes = batchWorkspaceBytes(images: images)
    let ws = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 64), alignment: 64)
    defer { ws.deallocate() }
    try x.withUnsafeBufferPointer { (xp) throws(KernelError) in
      try y.withUnsafeMutableBufferPointer { (yp) throws(KernelError) in
        try bias.withOptionalPointer { (b) throws(KernelError) in
          try runBatch(
            images: images, x: xp.baseAddress!, bias: b, lo: lo, hi: hi, y: yp.baseAddress!, workspace: ws,
            threads: threads, microkernel: microkernel)
        }
      }
    }
    return y
  }

  /// Array convenience for one image (tests, tools).
  public func run(
    x: [Float], bias: [Float]? = nil, lo: Float = -.infinity, hi: Float = .infinity, threads: Int = 1,
    microkernel: Int? = nil, active: ActiveChannels = .all
  ) throws(KernelError) -> [Float] {
    let s = shape
    guard x.count == s.channels * s.h * s.w, bias.map({ $0.count == outputChannels }) ?? true else {
      throw KernelError(kind: .invalidArgument, message: "direct convolution: x or bias has the wrong size")
    }
    var y = [Float](repeating: 0, count: outputChannels * s.ho * s.wo)
    let ws = UnsafeMutableRawPointer.allocate(byteCount: max(workspaceBytes(active: active), 64), alignment: 64)
    defer { ws.deallocate() }
    try x.withUnsafeBufferPointer { (xb) throws(KernelError) in
      try bias.withOptionalPointer { (b) throws(KernelError) in
        try y.withUnsafeMutableBufferPointer { (yb) throws(KernelError) in
          try run(
            x: xb.baseAddress!, bias: b, lo: lo, hi: hi, y: yb.baseAddress!, workspace: ws, threads: threads,
            microkernel: microkernel, active: active)
        }
      }
    }
    return y
  }
}
