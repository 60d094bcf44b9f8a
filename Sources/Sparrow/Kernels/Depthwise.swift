internal import SparrowKernels

/// A depthwise convolution over one NCHW image (the C kernels in Kernels/conv): input channel
/// `c` produces output channels `c*multiplier ..< (c+1)*multiplier`, each with its own
/// `kh x kw` filter, bias and clamp.
public struct DepthwiseShape: Sendable, Equatable {
  public var channels, multiplier, h, w, kh, kw: Int
  public var strideH = 1, strideW = 1, dilationH = 1, dilationW = 1
  public var padTop = 0, padLeft = 0
  public var ho, wo: Int

  public init(
    channels: Int, multiplier: Int = 1, h: Int, w: Int, kh: Int, kw: Int, strideH: Int = 1, strideW: Int = 1,
    dilationH: Int = 1, dilationW: Int = 1, padTop: Int = 0, padLeft: Int = 0, ho: Int, wo: Int
  ) {
    (self.channels, self.multiplier, self.h, self.w, self.kh, self.kw) = (channels, multiplier, h, w, kh, kw)
    (self.strideH, self.strideW, self.dilationH, self.dilationW) = (strideH, strideW, dilationH, dilationW)
    (self.padTop, self.padLeft, self.ho, self.wo) = (padTop, padLeft, ho, wo)
  }

  var c: sparrow_dwconv_shape? {
    let all = [channels, multiplier, h, w, kh, kw, strideH, strideW, dilationH, dilationW, padTop, padLeft, ho, wo]
    guard all.allSatisfy({ $0 >= 0 }) else { return nil }
    return sparrow_dwconv_shape(
      channels: channels, multiplier: multiplier, h: h, w: w, kh: kh, kw: kw, stride_h: strideH, stride_w: strideW,
      dilation_h: dilationH, dilation_w: dilationW, pad_top: padTop, pad_left: padLeft, ho: ho, wo: wo)
  }
}

/// Runs depthwise convolutions of one validated shape. Stateless: callers own the workspace
/// (`workspaceBytes(threads:)`, 64-byte aligned), so one value can serve many sessions.
public struct DepthwiseKernel: Sendable {
  public let shape: DepthwiseShape
  private let cShape: sparrow_dwconv_shape
  /// The row microkernel of the ISA in force, bound once.
  private let boundMicrokernel: Int

  public init(_ shape: DepthwiseShape) throws(KernelError) {
    guard var s = shape.c else {
      throw KernelError(kind: .invalidArgument, message: "depthwise shape has a negative size")
    }
    try check(sparrow_dwconv_check(&s), "depthwise convolution")
    self.shape = shape
    cShape = s
    boundMicrokernel = sparrow_dwconv_ukernel_auto()
  }

  /// Workspace for `threads` threads.
  public func workspaceBytes(threads: Int) -> Int {
    var s = cShape
    return sparrow_dwconv_workspace_bytes(&s) * max(1, threads)
  }

  /// The row microkernel the active ISA uses.
  public static var kernelName: String { String(cString: sparrow_dwconv_kernel_name()) }
  /// Every registered row microkernel (index, name, runnable on this CPU): tests run them all.
  public static var microkernels: [(index: Int, name: String, runnable: Bool)] {
    (0..<sparrow_dwconv_ukernel_count()).map {
      (Int($0), String(cString: sparrow_dwconv_ukernel_name($0)), sparrow_dwconv_ukernel_runnable($0) != 0)
    }
  }

  /// `y = clamp(dwconv(x, w) + bias)` for one image. `w` holds `channels*multiplier*kh*kw`
  /// floats, `bias` `channels*multiplier` or nil. `microkernel` forces a registered row kernel
  /// (tests); nil, the active ISA's, bound when this kernel was made. Threads: `TileRunner`.
  public func run(
    x: UnsafePointer<Float>, w: UnsafePointer<Float>, bias: UnsafePointer<Float>?, lo: Float, hi: Float,
    y: UnsafeMutablePointer<Float>, workspace: UnsafeMutableRawPointer, threads: Int, microkernel: Int? = nil
  ) throws(KernelError) {
    let nt = max(1, min(threads, shape.channels))
    if let k = microkernel {
      guard k >= 0, sparrow_dwconv_ukernel_runnable(k) != 0 else {
        throw KernelError(kind: .unsupported, message: "depthwise microkernel \(k) cannot run on this CPU")
      }
    }
    guard lo <= hi else { throw KernelError(kind: .invalidArgument, message: "clamp range [\(lo), \(hi)] is empty") }
    var s = cShape
    withUnsafePointer(to: &s) { s in
      var plan = sparrow_dwconv_plan()
      sparrow_dwconv_prepare(&plan, s, x, w, bias, lo, hi, y, workspace, Int32(nt), microkernel ?? boundMicrokernel)
      withUnsafeMutablePointer(to: &plan) { p in
        TileRunner.run(tasks: p.pointee.tasks, threads: nt, sparrow_dwconv_task, p)
      }
    }
  }

  /// Array convenience for one image (tests, tools): returns `channels*multiplier x ho x wo`.
  public func run(
    x: [Float], weights: [Float], bias: [Float]? = nil, lo: Float = -.infinity, hi: Float = .infinity,
    threads: Int = 1, microkernel: Int? = nil
  ) throws(KernelError) -> [Float] {
    let s = shape
    let m = s.channels * s.multiplier
    guard x.count == s.channels * s.h * s.w, weights.count == m * s.kh * s.kw, bias.map({ $0.count == m }) ?? true else {
      throw KernelError(kind: .invalidArgument, message: "depthwise: x, weights or bias has the wrong size")
    }
    var y = [Float](repeating: 0, count: m * s.ho * s.wo)
    let bytes = workspaceBytes(threads: threads)
    let ws = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 64), alignment: 64)
    defer { ws.deallocate() }
    try x.withUnsafeBufferPointer { (xb) throws(KernelError) in
      try weights.withUnsafeBufferPointer { (wb) throws(KernelError) in
        try bias.withOptionalPointer { (b) throws(KernelError) in
          try y.withUnsafeMutableBufferPointer { (yb) throws(KernelError) in
            try run(
              x: xb.baseAddress!, w: wb.baseAddress!, bias: b, lo: lo, hi: hi, y: yb.baseAddress!, workspace: ws,
              threads: threads, microkernel: microkernel)
          }
        }
      }
    }
    return y
  }
}

/// Depthwise convolution with channels in the vector lanes (Kernels/conv/dwcv.c; multiplier 1):
/// blocks of `lanes` channels pixel-major, so every lane does a channel's work however narrow
/// the map. Weights and bias are packed once for the active ISA's lanes.
public struct DepthwiseLanesKernel: Sendable {
  public let shape: DepthwiseShape
  private let cShape: sparrow_dwconv_shape
  private let packed: [Float]
  private let perTask: Int

  /// The kernel's name under the active ISA (inspect).
  public static var kernelName: String {
    switch sparrow_dwcv_lanes(-1) {
    case 16: "dwcv_f32_16__avx512f"
    case 8: "dwcv_f32_8__avx2"
    case 4: "dwcv_f32_4__neon"
    default: "dwcv_f32_1__scalar"
    }
  }

  public init(_ shape: DepthwiseShape, weights: [Float], bias: [Float]?) throws(KernelError) {
    guard shape.multiplier == 1, var s = shape.c else {
      throw KernelError(kind: .invalidArgument, message: "channels-in-lanes depthwise needs multiplier 1")
    }
    try check(sparrow_dwconv_check(&s), "depthwise convolution")
    let taps = shape.kh * shape.kw
    guard weights.count == shape.channels * taps, bias.map({ $0.count == shape.channels }) ?? true else {
      throw KernelError(kind: .invalidArgument, message: "depthwise: weights or bias has the wrong size")
    }
    let per = sparrow_dwcv_workspace_bytes(&s, -1)
    guard per > 0 else { throw KernelError(kind: .invalidArgument, message: "depthwise window too large") }
    var p = [Float](repeating: 0, count: sparrow_dwcv_packed_floats(&s, -1))
    weights.withUnsafeBufferPointer { w in
      bias.withOptionalPointer { b in
        p.withUnsafeMutableBufferPointer { sparrow_dwcv_pack(&s, -1, w.baseAddress!, b, $0.baseAddress!) }
      }
    }
    (self.shape, cShape, packed, perTask) = (shape, s, p, per)
  }

  /// Workspace for `threads` threads.
  public func workspaceBytes(threads: Int) -> Int { perTask * max(1, threads) }

  /// `y = clamp(dwconv(x, w) + bias)` for one image, the weights given at init.
  public func run(
    x: UnsafePointer<Float>, lo: Float, hi: Float, y: UnsafeMutablePointer<Float>, workspace: UnsafeMutableRawPointer,
    threads: Int
  ) throws(KernelError) {
    var s = cShape
    let nt = max(1, threads)
    let bytes = workspaceBytes(threads: nt)
    try packed.withUnsafeBufferPointer { (p) throws(KernelError) in
      try check(sparrow_dwcv(&s, -1, x, p.baseAddress!, lo, hi, y, workspace, bytes, Int32(nt)), "depthwise convolution")
    }
  }
}
