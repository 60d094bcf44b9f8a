import Testing

@testable import Sparrow

/// The gathered GEMM (Kernels/gate/gather.c, kind ROWS of the gate kernel list): every runnable
/// kernel and the automatic choice, X as rows or as a 3x3 window (stride 1 and 2, padding 1), kept
/// rows and channels none, all, one or random (ListKind), bias and a gate scale or not, on 1 to 3
/// threads, against a plain Swift loop. Unkept input channels are poisoned (NaN, ±Inf) where X
/// is rows: a read would leak; unkept output rows must be exact zeros.
@Suite struct GatherKernelTests {
  static var kernels: [Int?] { [nil] + GatherGemm.microkernels.filter(\.runnable).map(\.index) }

  @Test func everyISAHasItsKernel() {
    let names = GatherGemm.microkernels.map(\.name)
    #expect(names.contains { $0.hasSuffix("__scalar") })
    #if arch(x86_64)
      #expect(names.contains { $0.hasSuffix("__avx2") })
    #endif
    #expect(GatherGemm.kernelName.hasPrefix("gatherk_rows"))
  }

  @Test(arguments: kernels, [false, true])
  func matchesThePlainLoop(_ kernel: Int?, _ windowed: Bool) throws {
    for seed in UInt64(0)..<40 {
      var rng = SeededRNG(seed: seed &+ (windowed ? 500 : 0))
      let cin = Int.random(in: 1...9, using: &rng), m = Int.random(in: 1...13, using: &rng)
      let h = Int.random(in: 1...9, using: &rng), w = Int.random(in: 1...9, using: &rng)
      let stride = windowed ? Int.random(in: 1...2, using: &rng) : 1, kk = windowed ? 9 : 1, k = cin * kk
      let ho = windowed ? (h - 1) / stride + 1 : h, wo = windowed ? (w - 1) / stride + 1 : w, n = ho * wo
      let rowsKind = ListKind.allCases.randomElement(using: &rng)!
      let chansKind = ListKind.allCases.randomElement(using: &rng)!
      let rows = rowsKind.pick(m, &rng), chans = chansKind.pick(cin, &rng)
      let weights = (0..<(m * k)).map { _ in rng.float() }
      let bias: [Float]? = Bool.random(using: &rng) ? (0..<m).map { _ in rng.float() } : nil
      let scale: [Float]? = Bool.random(using: &rng) ? (0..<m).map { _ in abs(rng.float()) * 2 } : nil
      let lo: Float = Bool.random(using: &rng) ? 0 : -.infinity
      let threads = Int.random(in: 1...3, using: &rng)
      var x = (0..<(windowed ? cin * h * w : k * n)).map { _ in rng.float() }
      if !windowed { x = poisonedX(x, k: k, n: n, inChannels: chans, kPerChannel: 1) }
      let label = "kernel \(kernel.map(String.init) ?? "auto") seed \(seed) cin \(cin) m \(m) n \(n) rows \(rows.map { "\($0.count)" } ?? "all") chans \(chans.map { "\($0.count)" } ?? "all")"
      // Reference.
      let keptChans = chans.map { $0.map(Int.init) } ?? Array(0..<cin)
      let keptRows = Set(rows.map { $0.map(Int.init) } ?? Array(0..<m))
      var ref = [Float](repeating: 0, count: m * n)
      for r in 0..<m where keptRows.contains(r) {
        for j in 0..<n {
          var acc: Double = 0
          for ch in keptChans {
            for t in 0..<kk {
              let xv: Float
              if windowed {
                let iy = (j / wo) * stride + t / 3 - 1, ix = (j % wo) * stride + t % 3 - 1
                xv = iy < 0 || ix < 0 || iy >= h || ix >= w ? 0 : x[(ch * h + iy) * w + ix]
              } else {
                xv = x[(ch * kk + t) * n + j]
              }
              acc += Double(weights[r * k + ch * kk + t]) * Double(xv)
            }
          }
          var v = Float(acc) + (bias?[r] ?? 0)
          v = max(v, lo)
          ref[r * n + j] = v * (scale?[r] ?? 1)
        }
      }
      var y = [Float](repeating: .nan, count: m * n)
      let ws = UnsafeMutableRawPointer.allocate(byteCount: max(GatherGemm.workspaceBytes(m: m, k: k), 64), alignment: 64)
      defer { ws.deallocate() }
      let im2col = windowed
        ? try Im2col(
          DepthwiseShape(
            channels: cin, multiplier: 1, h: h, w: w, kh: 3, kw: 3, strideH: stride, strideW: stride, padTop: 1,
            padLeft: 1, ho: ho, wo: wo)) : nil
      x.withUnsafeBufferPointer { xb in
        weights.withUnsafeBufferPointer { wb in
          y.withUnsafeMutableBufferPointer { yb in
            bias.withOptionalPointer { b in
              scale.withOptionalPointer { s in
                rows.withOptionalPointer { rp in
                  chans.withOptionalPointer { cp in
                    GatherGemm.run(
                      w: wb.baseAddress!, m: m, k: k, n: n, outRows: rp, outRowCount: rows?.count ?? 0,
                      inChannels: cp, inChannelCount: chans?.count ?? 0, kPerChannel: kk, x: xb.baseAddress!,
                      xStride: n, im2col: im2col, y: yb.baseAddress!, yStride: n, bias: b, scale: s, lo: lo,
                      hi: .infinity, threads: threads, workspace: ws, microkernel: kernel)
                  }
                }
              }
            }
          }
        }
      }
      for i in 0..<(m * n) {
        let ok = keptRows.contains(i / n) ? abs(y[i] - ref[i]) <= 1e-5 + 1e-4 * abs(ref[i]) : y[i] == 0
        if !ok {
          Issue.record("\(label): y[\(i / n)][\(i % n)] = \(y[i]), reference \(ref[i])")
          break
        }
      }
    }
  }
}
