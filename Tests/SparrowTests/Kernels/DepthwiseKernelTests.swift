import Testing

@testable import Sparrow

/// Every registered depthwise row microkernel (scalar, AVX2 here; NEON runs under qemu in
/// Tests/KernelsNEON) against a plain loop over the convolution's definition, on random shapes
/// that hit each kernel's 32/8/masked-tail paths, strides, dilations, padding, multipliers,
/// bias, clamps and thread splits.
@Suite struct DepthwiseKernelTests {
  static func reference(_ s: DepthwiseShape, x: [Float], w: [Float], bias: [Float]?, lo: Float, hi: Float) -> [Float] {
    let m = s.channels * s.multiplier
    var y = [Float](repeating: 0, count: m * s.ho * s.wo)
    for oc in 0..<m {
      let c = oc / s.multiplier
      for oy in 0..<s.ho {
        for ox in 0..<s.wo {
          var acc: Double = Double(bias?[oc] ?? 0)
          for ky in 0..<s.kh {
            for kx in 0..<s.kw {
              let iy = oy * s.strideH + ky * s.dilationH - s.padTop
              let ix = ox * s.strideW + kx * s.dilationW - s.padLeft
              if iy >= 0 && iy < s.h && ix >= 0 && ix < s.w {
                acc += Double(w[(oc * s.kh + ky) * s.kw + kx]) * Double(x[(c * s.h + iy) * s.w + ix])
              }
            }
          }
          y[(oc * s.ho + oy) * s.wo + ox] = min(max(Float(acc), lo), hi)
        }
      }
    }
    return y
  }

  static func randomShape(_ rng: inout SeededRNG) -> DepthwiseShape {
    let kh = [1, 3, 3, 5, 2].randomElement(using: &rng)!, kw = [1, 3, 3, 5, 7].randomElement(using: &rng)!
    let sh = Int.random(in: 1...3, using: &rng), sw = Int.random(in: 1...3, using: &rng)
    let dh = Int.random(in: 1...2, using: &rng), dw = Int.random(in: 1...2, using: &rng)
    let h = Int.random(in: 1...12, using: &rng)
    let w = [1, 5, 8, 9, 31, 33, 40, 70, 75].randomElement(using: &rng)!
    let pt = Int.random(in: 0...2, using: &rng), pl = Int.random(in: 0...3, using: &rng)
    let pb = Int.random(in: 0...2, using: &rng), pr = Int.random(in: 0...3, using: &rng)
    let ho = max(1, (h + pt + pb - ((kh - 1) * dh + 1)) / sh + 1)
    let wo = max(1, (w + pl + pr - ((kw - 1) * dw + 1)) / sw + 1)
    return DepthwiseShape(
      channels: Int.random(in: 1...5, using: &rng), multiplier: Int.random(in: 1...2, using: &rng), h: h, w: w, kh: kh,
      kw: kw, strideH: sh, strideW: sw, dilationH: dh, dilationW: dw, padTop: pt, padLeft: pl, ho: ho, wo: wo)
  }

  @Test(arguments: 0..<60) func everyMicrokernelMatchesTheDefinition(_ seed: Int) throws {
    var rng = SeededRNG(seed: UInt64(seed) + 9100)
    let s = Self.randomShape(&rng)
    let m = s.channels * s.multiplier
    let x = (0..<(s.channels * s.h * s.w)).map { _ in rng.float() }
    let w = (0..<(m * s.kh * s.kw)).map { _ in rng.float() }
    let bias: [Float]? = Bool.random(using: &rng) ? (0..<m).map { _ in rng.float() } : nil
    let (lo, hi): (Float, Float) = [(-.infinity, .infinity), (0, .infinity), (0, 0.5)].randomElement(using: &rng)!
    let ref = Self.reference(s, x: x, w: w, bias: bias, lo: lo, hi: hi)
    let kernel = try DepthwiseKernel(s)
    let kernels = DepthwiseKernel.microkernels.filter(\.runnable)
    #expect(kernels.count >= 1)
    for k in kernels {
      for threads in [1, 2] {
        let got = try kernel.run(x: x, weights: w, bias: bias, lo: lo, hi: hi, threads: threads, microkernel: k.index)
        #expect(firstMismatch(got, ref) == nil, "seed \(seed) \(k.name) threads \(threads): \(s)")
      }
    }
    // The automatic choice, through the threaded entry point.
    let auto = try kernel.run(x: x, weights: w, bias: bias, lo: lo, hi: hi, threads: 2)
    #expect(firstMismatch(auto, ref) == nil, "seed \(seed) auto: \(s)")
  }

  /// Channels in the vector lanes (multiplier 1; the active ISA's lanes, partial blocks too)
  /// against the same definition, 1 and 2 threads.
  @Test(arguments: 0..<30) func channelsInLanesMatchTheDefinition(_ seed: Int) throws {
    var rng = SeededRNG(seed: UInt64(seed) + 7700)
    var s = Self.randomShape(&rng)
    s.multiplier = 1
    s.channels = Int.random(in: 1...40, using: &rng)
    let x = (0..<(s.channels * s.h * s.w)).map { _ in rng.float() }
    let w = (0..<(s.channels * s.kh * s.kw)).map { _ in rng.float() }
    let bias: [Float]? = Bool.random(using: &rng) ? (0..<s.channels).map { _ in rng.float() } : nil
    let (lo, hi): (Float, Float) = [(-.infinity, .infinity), (0, .infinity), (0, 0.5)].randomElement(using: &rng)!
    let ref = Self.reference(s, x: x, w: w, bias: bias, lo: lo, hi: hi)
    let kernel = try DepthwiseLanesKernel(s, weights: w, bias: bias)
    for threads in [1, 2] {
      var y = [Float](repeating: .nan, count: s.channels * s.ho * s.wo)
      let bytes = kernel.workspaceBytes(threads: threads)
      let ws = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 64), alignment: 64)
      defer { ws.deallocate() }
      try x.withUnsafeBufferPointer { (xb) throws(KernelError) in
        try y.withUnsafeMutableBufferPointer { (yb) throws(KernelError) in
          try kernel.run(x: xb.baseAddress!, lo: lo, hi: hi, y: yb.baseAddress!, workspace: ws, threads: threads)
        }
      }
      #expect(firstMismatch(y, ref) == nil, "seed \(seed) threads \(threads): \(s)")
    }
    #expect(throws: KernelError.self) {
      var m2 = s
      m2.multiplier = 2
      _ = try DepthwiseLanesKernel(m2, weights: w + w, bias: nil)
    }
  }

  @Test func keepsNaN() throws {
    let s = DepthwiseShape(channels: 1, h: 1, w: 40, kh: 1, kw: 1, ho: 1, wo: 40)
    var x = [Float](repeating: 1, count: 40)
    for i in [0, 9, 35, 39] { x[i] = .nan }
    for k in DepthwiseKernel.microkernels where k.runnable {
      let y = try DepthwiseKernel(s).run(x: x, weights: [2], lo: 0, hi: 6, microkernel: k.index)
      #expect([0, 9, 35, 39].allSatisfy { y[$0].isNaN }, "\(k.name)")
      #expect(y[1] == 2 && y[38] == 2, "\(k.name)")
    }
  }

  @Test func refusesBadShapes() {
    let ok = DepthwiseShape(channels: 2, h: 4, w: 4, kh: 3, kw: 3, ho: 2, wo: 2)
    var zero = ok
    zero.strideH = 0
    var negative = ok
    negative.padTop = -1
    var huge = ok
    huge.ho = 1 << 29
    huge.strideH = 1 << 29
    for bad in [zero, negative, huge] {
      #expect(throws: KernelError.self) { try DepthwiseKernel(bad) }
    }
    #expect(throws: KernelError.self) {
      try DepthwiseKernel(ok).run(x: [1], weights: [Float](repeating: 0, count: 18))
    }
  }
}

/// im2col (C) against the plain definition, on the same random window shapes.
@Suite struct Im2colTests {
  @Test(arguments: 0..<40) func matchesTheDefinition(_ seed: Int) throws {
    var rng = SeededRNG(seed: UInt64(seed) + 4400)
    let s = DepthwiseKernelTests.randomShape(&rng)
    let x = (0..<(s.channels * s.h * s.w)).map { _ in rng.float() }
    #expect(try Im2col(s).run(x) == WindowKernelTests.unfold(s, x), "seed \(seed): \(s)")
  }
}
