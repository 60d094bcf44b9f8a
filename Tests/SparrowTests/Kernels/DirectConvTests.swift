import Testing

@testable import Sparrow

/// The direct sparse convolution (no im2col) against a plain loop over the definition, for every
/// runnable row microkernel, sparsities 0 / 0.5 / 0.9 / 1, and 1 or 2 threads.
@Suite struct DirectConvTests {
  static func reference(_ s: DepthwiseShape, cout: Int, x: [Float], w: [Float], bias: [Float]?, lo: Float, hi: Float)
    -> [Float]
  {
    var y = [Float](repeating: 0, count: cout * s.ho * s.wo)
    for m in 0..<cout {
      for oy in 0..<s.ho {
        for ox in 0..<s.wo {
          var acc = Double(bias?[m] ?? 0)
          for c in 0..<s.channels {
            for ky in 0..<s.kh {
              for kx in 0..<s.kw {
                let iy = oy * s.strideH + ky * s.dilationH - s.padTop
                let ix = ox * s.strideW + kx * s.dilationW - s.padLeft
                if iy >= 0 && iy < s.h && ix >= 0 && ix < s.w {
                  acc += Double(w[((m * s.channels + c) * s.kh + ky) * s.kw + kx]) * Double(x[(c * s.h + iy) * s.w + ix])
                }
              }
            }
          }
          y[(m * s.ho + oy) * s.wo + ox] = min(max(Float(acc), lo), hi)
        }
      }
    }
    return y
  }

  @Test(arguments: 0..<40) func matchesTheDefinition(_ seed: Int) throws {
    var rng = SeededRNG(seed: UInt64(seed) + 6600)
    let s = DepthwiseKernelTests.randomShape(&rng)
    let cout = Int.random(in: 1...7, using: &rng)
    let sparsity = [0.0, 0.5, 0.9, 1.0][seed % 4]
    let w = (0..<(cout * s.channels * s.kh * s.kw)).map { _ in
      Double.random(in: 0..<1, using: &rng) < sparsity ? 0 : rng.float()
    }
    let x = (0..<(s.channels * s.h * s.w)).map { _ in rng.float() }
    let bias: [Float]? = seed % 3 == 0 ? nil : (0..<cout).map { _ in rng.float() }
    let (lo, hi): (Float, Float) = seed % 2 == 0 ? (-.infinity, .infinity) : (0, 6)
    let ref = Self.reference(s, cout: cout, x: x, w: w, bias: bias, lo: lo, hi: hi)
    let conv = try DirectSparseConv(s, outputChannels: cout, weights: w)
    #expect(conv.nonzeros == w.filter { $0 != 0 }.count)
    for k in DepthwiseKernel.microkernels where k.runnable {
      for threads in [1, 2] {
        let got = try conv.run(x: x, bias: bias, lo: lo, hi: hi, threads: threads, microkernel: k.index)
        #expect(firstMismatch(got, ref) == nil, "seed \(seed) \(k.name) threads \(threads): \(s) cout \(cout)")
      }
    }
    let auto = try conv.run(x: x, bias: bias, lo: lo, hi: hi, threads: 2)
    #expect(firstMismatch(auto, ref) == nil, "seed \(seed) auto: \(s)")
  }

  /// Dense mode, channel-major and pixel-major: every runnable kernel of the form (and the
  /// active ISA's) on random windows, output channels past one panel, rows wider than one
  /// 16-pixel block, pixel blocks across row ends and short last blocks, with and without
  /// active-channel lists (inactive outputs exact zeros, inactive inputs counted as zero).
  @Test(arguments: 0..<30, [false, true]) func denseMatchesTheDefinition(_ seed: Int, pixel: Bool) throws {
    var rng = SeededRNG(seed: UInt64(seed) + 7300)
    var s = DepthwiseKernelTests.randomShape(&rng)
    s.channels = Int.random(in: 1...9, using: &rng)
    s.multiplier = 1
    if seed % 5 == 0 {
      // Wide rows and many channels: K splits into several slices of input channels (partial
      // sums through Y; direct.c keeps about 16 KiB of input rows per slice); in pixel mode K
      // past 512 runs in slices of 256 with partial sums on the stack, over chunks of at most
      // 64 pixel blocks (seeds 15 and up: 60+ channels, up to 9 x 95 outputs).
      let (c, h) = (30 + 2 * seed, 4 + seed / 5)
      s = DepthwiseShape(
        channels: c, multiplier: 1, h: h, w: 70 + seed, kh: 3, kw: 3, strideH: 1, strideW: 1 + seed % 2,
        dilationH: 1, dilationW: 1, padTop: 1, padLeft: 1, ho: h, wo: (70 + seed + 2 - 3) / (1 + seed % 2) + 1)
    }
    let cout = Int.random(in: 1...(pixel ? 40 : 20), using: &rng)
    var w = (0..<(cout * s.channels * s.kh * s.kw)).map { _ in
      Double.random(in: 0..<1, using: &rng) < 0.2 ? 0 : rng.float()
    }
    // Pixel mode, odd seeds: 2:4 shared by each 16-channel panel (two of every four columns zero
    // in all its rows), and from seed 3 on, every fourth seed, the first panel all zero: the
    // compacted panels skip those columns (and an empty panel writes bias only).
    let k = s.channels * s.kh * s.kw
    let shared = pixel && seed % 2 == 1
    if shared {
      for p in 0..<((cout + 15) / 16) {
        for g in stride(from: 0, to: k, by: 4) {
          let keep = Set([Int.random(in: 0..<4, using: &rng), Int.random(in: 0..<4, using: &rng)])
          for j in g..<min(g + 4, k) where !keep.contains(j - g) || (p == 0 && seed % 4 == 3) {
            for m in (16 * p)..<min(16 * p + 16, cout) { w[m * k + j] = 0 }
          }
        }
      }
    }
    let x = (0..<(s.channels * s.h * s.w)).map { _ in rng.float() }
    let bias: [Float]? = seed % 3 == 0 ? nil : (0..<cout).map { _ in rng.float() }
    let (lo, hi): (Float, Float) = seed % 2 == 0 ? (-.infinity, .infinity) : (0, 6)
    let ref = Self.reference(s, cout: cout, x: x, w: w, bias: bias, lo: lo, hi: hi)
    let conv = try DirectSparseConv(s, outputChannels: cout, weights: w, dense: true, pixel: pixel)
    #expect(conv.isDense && conv.isPixel == pixel)
    if shared {
      let kept = DirectConvChoice.keptPanelColumns(w, rows: cout, cols: k)
      #expect(kept <= 0.75 && conv.pixelColumns == Int((kept * Double((cout + 15) / 16 * k)).rounded()))
    }
    #expect(conv.nonzeros == w.filter { $0 != 0 }.count)
    let outs = (0..<cout).filter { _ in Bool.random(using: &rng) }.map(UInt32.init)
    let ins = (0..<s.channels).filter { _ in Bool.random(using: &rng) }.map(UInt32.init)
    // The reference with lists: inactive inputs zeroed, inactive outputs zero.
    var xIn = x
    for c in 0..<s.channels where !ins.contains(UInt32(c)) {
      for i in 0..<(s.h * s.w) { xIn[c * s.h * s.w + i] = 0 }
    }
    var refLists = Self.reference(s, cout: cout, x: xIn, w: w, bias: bias, lo: lo, hi: hi)
    for m in 0..<cout where !outs.contains(UInt32(m)) {
      for i in 0..<(s.ho * s.wo) { refLists[m * s.ho * s.wo + i] = 0 }
    }
    var refOut = ref
    for m in 0..<cout where !outs.contains(UInt32(m)) {
      for i in 0..<(s.ho * s.wo) { refOut[m * s.ho * s.wo + i] = 0 }
    }
    var ran = 0
    for k in (pixel ? DirectSparseConv.pixelMicrokernels : DirectSparseConv.denseMicrokernels) where k.runnable {
      ran += 1
      for threads in [1, 2] {
        let got = try conv.run(x: x, bias: bias, lo: lo, hi: hi, threads: threads, microkernel: k.index)
        #expect(firstMismatch(got, ref) == nil, "seed \(seed) \(k.name) threads \(threads): \(s) cout \(cout)")
      }
      let got = try conv.run(
        x: x, bias: bias, lo: lo, hi: hi, threads: 2, microkernel: k.index,
        active: ActiveChannels(outputRows: outs, inputChannels: ins))
      #expect(firstMismatch(got, refLists) == nil, "seed \(seed) \(k.name) lists: \(s) cout \(cout)")
      // An output list alone (pixel mode gathers the kept rows into panels of their own when they
      // fill fewer panels than hold one), on one thread and two.
      for threads in [1, 2] {
        let gotOut = try conv.run(
          x: x, bias: bias, lo: lo, hi: hi, threads: threads, microkernel: k.index,
          active: ActiveChannels(outputRows: outs))
        #expect(firstMismatch(gotOut, refOut) == nil, "seed \(seed) \(k.name) output list, threads \(threads)")
      }
    }
    #expect(ran >= 2, "the scalar kernel and the active ISA's")
    let auto = try conv.run(x: x, bias: bias, lo: lo, hi: hi, threads: 1)
    #expect(firstMismatch(auto, ref) == nil, "seed \(seed) auto: \(s)")
  }

  /// Batches as one multiply (pixel mode: blocks of every image share each panel pass; the other
  /// modes image by image) equal each image run alone: 1–5 images, dense and 2:4-shared panels,
  /// K short and sliced, every runnable pixel kernel, 1 and 2 threads.
  @Test(arguments: 0..<12) func batchesMatchOneImageAtATime(_ seed: Int) throws {
    var rng = SeededRNG(seed: UInt64(seed) + 9100)
    var s = DepthwiseKernelTests.randomShape(&rng)
    s.multiplier = 1
    s.channels = Int.random(in: 1...9, using: &rng)
    if seed % 4 == 3 {  // 60 channels x 9 taps: K past 512 runs in slices
      s = DepthwiseShape(
        channels: 60, multiplier: 1, h: 5, w: 20, kh: 3, kw: 3, strideH: 1, strideW: 1, dilationH: 1, dilationW: 1,
        padTop: 1, padLeft: 1, ho: 5, wo: 20)
    }
    let images = 1 + seed % 5, cout = Int.random(in: 1...40, using: &rng), k = s.channels * s.kh * s.kw
    var w = (0..<(cout * k)).map { _ in rng.float() }
    if seed % 2 == 1 {  // 2:4 shared by the whole panel
      for j in 0..<k where j % 4 < 2 { for m in 0..<cout { w[m * k + j] = 0 } }
    }
    let x = (0..<(images * s.channels * s.h * s.w)).map { _ in rng.float() }
    let bias: [Float]? = seed % 3 == 0 ? nil : (0..<cout).map { _ in rng.float() }
    let inImage = s.channels * s.h * s.w
    for pixel in [false, true] {
      let conv = try DirectSparseConv(s, outputChannels: cout, weights: w, dense: true, pixel: pixel)
      var ref: [Float] = []
      for i in 0..<images {
        let xi = Array(x[(i * inImage)..<((i + 1) * inImage)])
        ref += Self.reference(s, cout: cout, x: xi, w: w, bias: bias, lo: 0, hi: 6)
      }
      let kernels: [Int?] = pixel ? DirectSparseConv.pixelMicrokernels.filter(\.runnable).map(\.index) : [nil]
      for kernel in kernels {
        for threads in [1, 2] {
          let got = try conv.runBatch(
            images: images, x: x, bias: bias, lo: 0, hi: 6, threads: threads, microkernel: kernel)
          #expect(
            firstMismatch(got, ref) == nil,
            "seed \(seed) pixel \(pixel) kernel \(kernel ?? -1) threads \(threads) images \(images): \(s) cout \(cout)")
        }
      }
    }
  }

  /// 1×1 convolutions without padding (ResNet's strided projections) read the input itself in
  /// pixel mode (no padded or phase-split copy): strides 1–3 per axis, ends that leave input
  /// rows and columns unread, every runnable pixel kernel, one image and batches, with lists.
  @Test(arguments: 0..<8) func pointwiseReadsTheInputItself(_ seed: Int) throws {
    var rng = SeededRNG(seed: UInt64(seed) + 9700)
    let (sh, sw) = [(2, 2), (1, 1), (2, 1), (3, 2), (2, 3), (2, 2), (1, 2), (3, 3)][seed]
    let h = Int.random(in: 1...13, using: &rng), w = Int.random(in: 1...40, using: &rng)
    let s = DepthwiseShape(
      channels: Int.random(in: 1...20, using: &rng), multiplier: 1, h: h, w: w, kh: 1, kw: 1, strideH: sh, strideW: sw,
      dilationH: 1, dilationW: 1, padTop: 0, padLeft: 0, ho: (h - 1) / sh + 1, wo: (w - 1) / sw + 1)
    let cout = Int.random(in: 1...40, using: &rng), images = 1 + seed % 3
    let w0 = (0..<(cout * s.channels)).map { _ in rng.float() }
    let x = (0..<(images * s.channels * h * w)).map { _ in rng.float() }
    let bias: [Float]? = seed % 2 == 0 ? nil : (0..<cout).map { _ in rng.float() }
    let conv = try DirectSparseConv(s, outputChannels: cout, weights: w0, dense: true, pixel: true)
    let inImage = s.channels * h * w
    var ref: [Float] = []
    for i in 0..<images {
      ref += Self.reference(s, cout: cout, x: Array(x[(i * inImage)..<((i + 1) * inImage)]), w: w0, bias: bias, lo: 0, hi: 6)
    }
    let outs = (0..<cout).filter { _ in Bool.random(using: &rng) }.map(UInt32.init)
    let ins = (0..<s.channels).filter { _ in Bool.random(using: &rng) }.map(UInt32.init)
    var xIn = Array(x[0..<inImage])
    for c in 0..<s.channels where !ins.contains(UInt32(c)) { for i in 0..<(h * w) { xIn[c * h * w + i] = 0 } }
    var refLists = Self.reference(s, cout: cout, x: xIn, w: w0, bias: bias, lo: 0, hi: 6)
    for m in 0..<cout where !outs.contains(UInt32(m)) { for i in 0..<(s.ho * s.wo) { refLists[m * s.ho * s.wo + i] = 0 } }
    for k in DirectSparseConv.pixelMicrokernels where k.runnable {
      for threads in [1, 2] {
        let got = try conv.runBatch(images: images, x: x, bias: bias, lo: 0, hi: 6, threads: threads, microkernel: k.index)
        #expect(firstMismatch(got, ref) == nil, "seed \(seed) \(k.name) threads \(threads): \(s) cout \(cout)")
        let one = try conv.run(
          x: Array(x[0..<inImage]), bias: bias, lo: 0, hi: 6, threads: threads, microkernel: k.index,
          active: ActiveChannels(outputRows: outs, inputChannels: ins))
        #expect(firstMismatch(one, refLists) == nil, "seed \(seed) \(k.name) lists, threads \(threads): \(s)")
      }
    }
  }

  @Test func refusesBadArguments() throws {
    let s = DepthwiseShape(channels: 2, h: 4, w: 4, kh: 3, kw: 3, padTop: 1, padLeft: 1, ho: 4, wo: 4)
    #expect(throws: KernelError.self) { try DirectSparseConv(s, outputChannels: 3, weights: [1, 2]) }
    #expect(throws: KernelError.self) { try DirectSparseConv(s, outputChannels: 0, weights: []) }
    var bad = s
    bad.kh = 0
    #expect(throws: KernelError.self) { try DirectSparseConv(bad, outputChannels: 1, weights: []) }
    #expect(throws: KernelError.self) { try DirectSparseConv(s, outputChannels: 3, weights: [1, 2], dense: true) }
    #expect(throws: KernelError.self) { try DirectSparseConv(bad, outputChannels: 1, weights: [], dense: true) }
    #expect(throws: KernelError.self) { try DirectSparseConv(bad, outputChannels: 1, weights: [], pixel: true) }
    // A kernel index outside the form's list is refused, not run.
    let pixel = try DirectSparseConv(s, outputChannels: 1, weights: [Float](repeating: 1, count: 18), pixel: true)
    #expect(throws: KernelError.self) { _ = try pixel.run(x: [Float](repeating: 1, count: 32), microkernel: 99) }
  }
}

/// A 3x3 Conv in a graph, batch 2, sparse and dense: direct (forced), im2col (forced) and
/// measured plans all give what the dense plan gives, and the measured plan reports both timings.
@Suite struct DirectConvPlanTests {
  /// Sparse weights (80% zeros) take the sparse direct form, dense ones (none) the dense one;
  /// `.pixel` forces the pixel-major dense form on either. zeros 0.5: 2:4 shared by all rows (one
  /// 16-channel panel), where the pixel-major form is timed too (its panel skips the columns);
  /// zeros 0.6 unshared: below `DirectConvChoice.maxPixelZeroFraction`, so timed too.
  @Test(arguments: [ConvAlgorithm.direct, .pixel, .im2col, .measure], [0.8, 0.0, 0.5, 0.6])
  func matchesDense(_ algorithm: ConvAlgorithm, zeros: Double) throws {
    var rng = SeededRNG(seed: 4242)
    let (cin, cout, h, w) = (6, 10, 13, 21)
    let k = cin * 9
    let keep = (0..<k).map { j in zeros != 0.5 || j % 4 == 1 || j % 4 == 2 }
    let weights = (0..<(cout * k)).map { i in
      !keep[i % k] || Double.random(in: 0..<1, using: &rng) < (zeros == 0.5 ? 0 : zeros) ? 0 : rng.float()
    }
    if zeros == 0.5 { #expect(DirectConvChoice.keptPanelColumns(weights, rows: cout, cols: k) == 0.5) }
    let direct = zeros > 0 ? "direct" : "direct-dense"
    let g = Graph(
      inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(2), .fixed(cin), .fixed(h), .fixed(w)])],
      outputs: [ValueInfo(name: "y")],
      nodes: [
        Node(
          name: "conv", opType: "Conv", inputs: ["x", "w", "b"], outputs: ["y"],
          attributes: ["pads": .ints([1, 1, 1, 1]), "strides": .ints([2, 1])])
      ],
      constants: [
        "w": try Tensor(shape: [cout, cin, 3, 3], floats: weights),
        "b": try Tensor(shape: [cout], floats: (0..<cout).map { _ in rng.float() }),
      ], opset: 13)
    let x = try Tensor(shape: [2, cin, h, w], floats: (0..<(2 * cin * h * w)).map { _ in rng.float() })
    let dense = try Session(plan: try Planner.plan(g, options: PlanOptions(threads: 1, format: .fixed(.dense)))).run(["x": x])
    var o = PlanOptions(threads: 2, formatCache: nil)
    o.convAlgorithm = algorithm
    o.gateLayers = .all  // wrapped for the runtime gate, as every inner convolution of a model is
    let plan = try Planner.plan(g, options: o)
    let got = try Session(plan: plan).run(["x": x])
    #expect(firstMismatch(got["y"]!.floats, dense["y"]!.floats) == nil, "\(algorithm) zeros \(zeros)")
    let layer = plan.layers[0]
    // The pixel form runs the batch as one multiply: whatever wraps the step (the gate's
    // GatedStep) must size the session's scratch for that, not for one image's lists.
    for s in plan.steps {
      if let g = s.step as? GatedStep { #expect(g.scratchBytes >= g.inner.scratchBytes) }
      #expect(plan.memory.scratchBytes >= s.step.scratchBytes)
    }
    switch algorithm {
    case .direct: #expect(layer.format == direct)
    case .pixel: #expect(layer.format == "direct-pixel")
    case .im2col: #expect(!layer.format.hasPrefix("direct"))
    case .measure:
      #expect(layer.measured[direct] != nil && layer.measured.keys.contains { $0.hasPrefix("im2col+") })
      // Dense weights, panel-shared zeros and moderate zeros also time the pixel-major form.
      #expect((layer.measured["direct-pixel"] != nil) == (zeros != 0.8))
    }
  }
}
