import Testing

@testable import Sparrow
internal import SparrowKernels

/// Kernels that build their im2col panels from the image (CSR and N:M on AVX2, every packed
/// dense kernel) (`sparrow_spmm_call.x_window`) against
/// the plain definition: W times the unfolded image, on random window shapes (strides,
/// dilations, pads, outputs that span several 64-column panels and end in partial ones), with
/// and without active-channel lists, on 1 and 2 threads.
@Suite struct WindowKernelTests {
  /// The unfolded image by the definition: rows (c, ky, kx), columns (oy, ox).
  static func unfold(_ s: DepthwiseShape, _ x: [Float]) -> [Float] {
    let n = s.ho * s.wo
    var col = [Float](repeating: 0, count: s.channels * s.kh * s.kw * n)
    for c in 0..<s.channels {
      for ky in 0..<s.kh {
        for kx in 0..<s.kw {
          for oy in 0..<s.ho {
            for ox in 0..<s.wo {
              let iy = oy * s.strideH + ky * s.dilationH - s.padTop, ix = ox * s.strideW + kx * s.dilationW - s.padLeft
              guard iy >= 0, iy < s.h, ix >= 0, ix < s.w else { continue }
              col[((c * s.kh + ky) * s.kw + kx) * n + oy * s.wo + ox] = x[(c * s.h + iy) * s.w + ix]
            }
          }
        }
      }
    }
    return col
  }

  /// Runs `w` with X as the window over `x`.
  static func multiply(
    _ w: PackedMatrix, window s: DepthwiseShape, x: [Float], bias: [Float]?, lo: Float, hi: Float,
    threads: Int, outRows: [UInt32]?, inChannels: [UInt32]?
  ) throws -> [Float] {
    let n = s.ho * s.wo
    var y = [Float](repeating: .nan, count: w.rows * n)
    let bytes = SpMMRunner.workspaceBytes(w, n: n, activeRows: outRows != nil, activeChannels: inChannels != nil)
    let ws = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 64), alignment: 64)
    defer { ws.deallocate() }
    let im2col = try Im2col(s)
    try x.withUnsafeBufferPointer { xb in
      try y.withUnsafeMutableBufferPointer { yb in
        try bias.withOptionalPointer { b in
          try outRows.withOptionalPointer { rows in
            try inChannels.withOptionalPointer { chans in
              try im2col.withWindow(channels: s.channels) { (win) throws(KernelError) in
                try SpMMRunner.run(
                  w, x: xb.baseAddress!, xStride: n, n: n, y: yb.baseAddress!, yStride: n, bias: b, lo: lo, hi: hi,
                  workspace: ws, workspaceBytes: bytes, threads: threads, outRows: rows, outRowCount: outRows?.count ?? 0,
                  inChannels: chans, inChannelCount: inChannels?.count ?? 0, kPerChannel: s.kh * s.kw, window: win)
              }
            }
          }
        }
      }
    }
    return y
  }

  @Test(arguments: 0..<40) func everyWindowKernelMatchesTheDefinition(_ seed: Int) throws {
    var rng = SeededRNG(seed: UInt64(seed) + 7700)
    try Self.check(DepthwiseKernelTests.randomShape(&rng), seed: seed, rng: &rng)
  }

  /// Both strides 1 and the output as wide as the input ("same" padding, the usual 3×3): the
  /// kernels copy each panel row as one shifted run of the plane, then zero the padding columns.
  static let sameShapes: [DepthwiseShape] = [
    (3, 3, 1, 1, 1, 7, 7), (3, 3, 1, 1, 1, 14, 14), (3, 3, 1, 1, 1, 28, 30), (5, 5, 2, 2, 1, 9, 13),
    (3, 3, 1, 0, 2, 6, 11), (1, 3, 1, 1, 1, 3, 70), (3, 1, 2, 0, 2, 5, 3), (3, 3, 1, 2, 1, 1, 1),
  ].map { kh, kw, pt, pl, d, h, w in
    // Top padding pt with bottom padding (kh-1)·d - pt keeps ho = h; likewise for the width.
    DepthwiseShape(
      channels: 3, multiplier: 1, h: h, w: w, kh: kh, kw: kw, strideH: 1, strideW: 1, dilationH: d, dilationW: d,
      padTop: min(pt, (kh - 1) * d), padLeft: min(pl, (kw - 1) * d), ho: h, wo: w)
  }

  @Test(arguments: sameShapes.indices) func sameShapesMatchTheDefinition(_ i: Int) throws {
    var rng = SeededRNG(seed: UInt64(i) + 8800)
    let s = Self.sameShapes[i]
    try Self.check(s, seed: i, rng: &rng)
    // The unfolded copy (for kernels that read matrices) takes the same shortcut.
    let x = (0..<(s.channels * s.h * s.w)).map { _ in rng.float() }
    #expect(try Im2col(s).run(x) == Self.unfold(s, x), "\(s)")
  }

  /// K past one 256-row slice (the packed kernels' partial sums then go through Y between
  /// slices), a shifted 3×3 and a strided 7×7 stem, outputs spanning several 64-column panels.
  static let deepShapes: [DepthwiseShape] = [
    DepthwiseShape(
      channels: 40, multiplier: 1, h: 9, w: 13, kh: 3, kw: 3, strideH: 1, strideW: 1, dilationH: 1, dilationW: 1,
      padTop: 1, padLeft: 1, ho: 9, wo: 13),
    DepthwiseShape(
      channels: 6, multiplier: 1, h: 23, w: 29, kh: 7, kw: 7, strideH: 2, strideW: 2, dilationH: 1, dilationW: 1,
      padTop: 3, padLeft: 3, ho: 12, wo: 15),
  ]

  @Test(arguments: deepShapes.indices) func deepShapesMatchTheDefinition(_ i: Int) throws {
    var rng = SeededRNG(seed: UInt64(i) + 9900)
    try Self.check(Self.deepShapes[i], seed: i, rng: &rng)
  }

  static func check(_ s: DepthwiseShape, seed: Int, rng: inout SeededRNG) throws {
    let k = s.channels * s.kh * s.kw, n = s.ho * s.wo
    let m = Int.random(in: 1...40, using: &rng)
    let x = (0..<(s.channels * s.h * s.w)).map { _ in rng.float() }
    let col = Self.unfold(s, x)
    let bias = (0..<m).map { _ in rng.float() }
    let outRows = (0..<m).filter { _ in Bool.random(using: &rng) }.map(UInt32.init)
    let inChannels = (0..<s.channels).filter { _ in Bool.random(using: &rng) }.map(UInt32.init)
    var tested = 0
    for format in [WeightFormat.csr, .nm(n: 2, m: 4), .packed] {
      let sparsity = format == .csr ? 0.7 : format == .packed ? 0.2 : 0.5
      let w = patternedWeights(format: format, m: m, k: k, sparsity: sparsity, rng: &rng)
      let packed = try PackedMatrix(dense: w, rows: m, cols: k, format: format)
      for kernel in MicroKernel.all where kernel.format == format.kind && kernel.runnable && fits(kernel, packed) {
        try packed.force(kernel: kernel)
        guard packed.readsWindow else { continue }
        tested += 1
        for (threads, rows, chans) in [(1, nil, nil), (2, nil, nil), (1, outRows, inChannels), (2, nil, inChannels)] as [(Int, [UInt32]?, [UInt32]?)] {
          let got = try Self.multiply(
            packed, window: s, x: x, bias: bias, lo: 0, hi: .infinity, threads: threads, outRows: rows, inChannels: chans)
          let ref = referenceSpMM(
            w: w, m: m, k: k, x: col, n: n, bias: bias, lo: 0, hi: .infinity, outRows: rows, inChannels: chans,
            kPerChannel: s.kh * s.kw)
          if let i = firstMismatch(got, ref) {
            Issue.record("seed \(seed) \(s) m=\(m) \(kernel.name) threads=\(threads) lists=\(chans != nil): y[\(i)] = \(got[i]), expected \(ref[i])")
            return
          }
        }
      }
    }
    // Every packed dense (GEMM) kernel reads windows, on every ISA; on a CPU with AVX2 the CSR
    // and N:M kernels at AVX2 and above do too (the shared-pattern N:M ones need a shared
    // matrix, which these weights are not): the test must have run them.
    let gemm = MicroKernel.all.filter { $0.format == .packed && $0.runnable }.count
    let sparse = MicroKernel.all.filter {
      ($0.format == .csr || $0.format == .nm) && $0.blockRows == nil && $0.runnable && ($0.isa == .avx2 || $0.isa == .avx512)
    }.count
    #expect(gemm >= 1)
    #expect(tested == gemm + sparse)
  }

  /// A kernel that needs X unfolded refuses a window with an error, not a wrong answer.
  /// Depthwise planes larger than one band of padded rows (the driver pads and multiplies a band
  /// of output rows at a time, each band's rows split into stride phases in one pass by the
  /// active ISA's helper: this suite also runs with SPARROW_ISA=avx2 and scalar): bands that end
  /// mid-plane and a short last band, odd and even widths and pads, strides 1-3, dilation, and a
  /// channel multiplier, against the plain definition on 1 and 2 threads.
  static let bandShapes: [DepthwiseShape] = [
    DepthwiseShape(channels: 3, h: 112, w: 112, kh: 3, kw: 3, strideH: 2, strideW: 2, padTop: 1, padLeft: 1, ho: 56, wo: 56),
    DepthwiseShape(channels: 2, h: 97, w: 123, kh: 3, kw: 3, padTop: 1, padLeft: 1, ho: 97, wo: 123),
    DepthwiseShape(
      channels: 2, multiplier: 2, h: 90, w: 101, kh: 5, kw: 5, strideH: 2, strideW: 2, padTop: 2, padLeft: 2, ho: 45,
      wo: 51),
    DepthwiseShape(
      channels: 1, h: 80, w: 150, kh: 3, kw: 3, strideH: 1, strideW: 2, dilationH: 2, dilationW: 2, padTop: 2,
      padLeft: 3, ho: 80, wo: 76),
    DepthwiseShape(channels: 2, h: 70, w: 200, kh: 3, kw: 3, strideH: 3, strideW: 3, padTop: 0, padLeft: 2, ho: 23, wo: 67),
    DepthwiseShape(channels: 1, h: 60, w: 130, kh: 3, kw: 3, strideH: 2, strideW: 2, padTop: 0, padLeft: 0, ho: 29, wo: 64),
  ]

  @Test(arguments: bandShapes.indices) func depthwiseBandsMatchTheDefinition(_ i: Int) throws {
    let s = Self.bandShapes[i]
    var rng = SeededRNG(seed: UInt64(i) + 7300)
    let m = s.channels * s.multiplier
    let x = (0..<(s.channels * s.h * s.w)).map { _ in rng.float() }
    let w = (0..<(m * s.kh * s.kw)).map { _ in rng.float() }
    let bias = (0..<m).map { _ in rng.float() }
    let ref = DepthwiseKernelTests.reference(s, x: x, w: w, bias: bias, lo: -.infinity, hi: .infinity)
    let kernel = try DepthwiseKernel(s)
    for threads in [1, 2] {
      let got = try kernel.run(x: x, weights: w, bias: bias, lo: -.infinity, hi: .infinity, threads: threads)
      #expect(firstMismatch(got, ref) == nil, "\(s) threads \(threads)")
    }
  }

  @Test func kernelsWithoutWindowsRefuseThem() throws {
    var rng = SeededRNG(seed: 5)
    let s = DepthwiseShape(
      channels: 2, multiplier: 1, h: 6, w: 6, kh: 3, kw: 3, strideH: 1, strideW: 1, dilationH: 1, dilationW: 1,
      padTop: 1, padLeft: 1, ho: 6, wo: 6)
    let w = patternedWeights(format: .csr, m: 4, k: 18, sparsity: 0.5, rng: &rng)
    let packed = try PackedMatrix(dense: w, rows: 4, cols: 18, format: .csr)
    let scalar = try #require(MicroKernel.all.first { $0.format == .csr && $0.isa == .scalar })
    try packed.force(kernel: scalar)
    #expect(!packed.readsWindow)
    #expect(throws: KernelError.self) {
      _ = try Self.multiply(
        packed, window: s, x: [Float](repeating: 1, count: 72), bias: nil, lo: -.infinity, hi: .infinity, threads: 1,
        outRows: nil, inChannels: nil)
    }
  }
}

/// Convolutions with outputs large enough that unfolded matrices are built in bands of output
/// rows (dense and other matrix-reading kernels) and sparse kernels read windows: through the
/// planner in every format, both images of a batch, against the plain definition.
@Suite struct LargeConvTests {
  @Test(arguments: [(3, 5, 1, 2, 70, 66), (4, 3, 2, 1, 97, 90), (2, 7, 2, 3, 120, 110)])
  func everyFormatMatchesTheDefinition(c: Int, k: Int, stride: Int, pad: Int, h: Int, w: Int) throws {
    var rng = SeededRNG(seed: UInt64(c * 1000 + k * 100 + h))
    let m = 6
    let wt = (0..<(m * c * k * k)).map { _ in Double.random(in: 0..<1, using: &rng) < 0.6 ? 0 : rng.float() }
    let bias = (0..<m).map { _ in rng.float() }
    let g = Graph(
      inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(2), .fixed(c), .fixed(h), .fixed(w)])],
      outputs: [ValueInfo(name: "y")],
      nodes: [
        Node(
          name: "conv", opType: "Conv", inputs: ["x", "w", "b"], outputs: ["y"],
          attributes: [
            "pads": .ints(Array(repeating: Int64(pad), count: 4)), "strides": .ints([Int64(stride), Int64(stride)]),
          ])
      ],
      constants: ["w": try Tensor(shape: [m, c, k, k], floats: wt), "b": try Tensor(shape: [m], floats: bias)],
      opset: 13)
    let xs = (0..<(2 * c * h * w)).map { _ in rng.float() }
    let x = try Tensor(shape: [2, c, h, w], floats: xs)
    let ho = (h + 2 * pad - k) / stride + 1, wo = (w + 2 * pad - k) / stride + 1
    var ref = [Float](repeating: 0, count: 2 * m * ho * wo)
    for b in 0..<2 {
      for o in 0..<m {
        for oy in 0..<ho {
          for ox in 0..<wo {
            var s = bias[o]
            for ci in 0..<c {
              for ky in 0..<k {
                for kx in 0..<k {
                  let iy = oy * stride + ky - pad, ix = ox * stride + kx - pad
                  guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                  s += wt[((o * c + ci) * k + ky) * k + kx] * xs[((b * c + ci) * h + iy) * w + ix]
                }
              }
            }
            ref[((b * m + o) * ho + oy) * wo + ox] = s
          }
        }
      }
    }
    let want = try Tensor(shape: [2, m, ho, wo], floats: ref)
    for format in GateTests.formats {
      for conv in [ConvAlgorithm.im2col, .measure] {
        let (got, _) = try GateTests.run(g, x, format: format, gate: .off, conv: conv)
        #expect(GateTests.close(got, want), "\(format) \(conv) c=\(c) k=\(k) stride=\(stride) \(h)x\(w)")
      }
    }
  }
}
