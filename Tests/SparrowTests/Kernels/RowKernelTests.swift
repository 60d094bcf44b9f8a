import Foundation
import Testing

@testable import Sparrow

/// Every registered row kernel (scalar, AVX2 here; NEON runs under qemu in Tests/KernelsNEON)
/// against plain Double loops over the definitions, on sizes that reach the 32/16/8-wide, tail
/// and one-value paths, with row gaps, per-row masks and thread splits. Tolerances per value:
/// softmax 1e-8 + 1e-5·|ref|, GELU 2e-6 + 1e-5·|ref|, LayerNorm 1e-5 + 1e-5·|ref| (float sums of
/// up to 700 terms; erf's approximation is within 3.4e-7, times |x|/2).
@Suite struct RowKernelTests {
  static let sizes = [1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 100, 128, 384, 700]

  static func kernels(_ op: RowKernels.Op) -> [(index: Int, name: String)] {
    RowKernels.microkernels.filter { $0.op == op && $0.runnable }.map { ($0.index, $0.name) }
  }

  static func close(_ got: Float, _ ref: Double, abs a: Double, rel r: Double) -> Bool {
    ref.isNaN ? got.isNaN : Swift.abs(Double(got) - ref) <= a + r * Swift.abs(ref)
  }

  @Test func everyOpHasAScalarKernelAndTheActiveOne() {
    for op in RowKernels.Op.allCases {
      let ks = Self.kernels(op)
      #expect(ks.contains { $0.name.hasSuffix("__scalar") }, "\(op)")
      #expect(ks.contains { $0.name == RowKernels.kernelName(op) }, "\(op)")
    }
  }

  @Test(arguments: sizes) func softmaxMatchesTheDefinition(_ n: Int) throws {
    var rng = SeededRNG(seed: UInt64(n) + 7700)
    let rows = 5, xs = n + 3, maskRows = 2
    let x = (0..<(rows * xs)).map { _ in rng.float() * 8 }
    let mask: [Float] = (0..<(maskRows * n)).map { i in
      i % 7 == 3 ? -Float.greatestFiniteMagnitude : (i % 11 == 5 ? -.infinity : rng.float() - 1)
    }
    let offsets: [UInt32] = (0..<rows).map { UInt32(($0 % maskRows) * n) }
    for alpha: Float in [1, 0.17677669] {
      for masked in [false, true] {
        var ref = [Double](repeating: 0, count: rows * n)
        for r in 0..<rows {
          // alpha·x + mask rounded once to float, as the kernels' FMA and ONNX Runtime's Add.
          let v = (0..<n).map { i in
            Double(Float(Double(alpha) * Double(x[r * xs + i]) + (masked ? Double(mask[Int(offsets[r]) + i]) : 0)))
          }
          let m = v.max()!
          let e = v.map { Foundation.exp($0 - m) }
          let s = e.reduce(0, +)
          for i in 0..<n { ref[r * n + i] = e[i] / s }
        }
        for k in Self.kernels(.softmax) {
          for threads in [1, 2] {
            var y = [Float](repeating: .nan, count: rows * n)
            x.withUnsafeBufferPointer { xb in
              mask.withUnsafeBufferPointer { mb in
                offsets.withUnsafeBufferPointer { ob in
                  y.withUnsafeMutableBufferPointer { yb in
                    RowKernels.softmax(
                      rows: rows, n: n, x: xb.baseAddress!, xStride: xs, alpha: alpha,
                      mask: masked ? mb.baseAddress! : nil, maskRows: masked ? ob.baseAddress! : nil,
                      y: yb.baseAddress!, yStride: n, threads: threads, microkernel: k.index)
                  }
                }
              }
            }
            let bad = (0..<(rows * n)).first { !Self.close(y[$0], ref[$0], abs: 1e-8, rel: 1e-5) }
            #expect(
              bad == nil,
              "\(k.name) n \(n) alpha \(alpha) mask \(masked) threads \(threads): \(bad.map { "y[\($0)] = \(y[$0]) vs \(ref[$0])" } ?? "")"
            )
            if masked {
              // -inf in the mask: exactly 0 out.
              let leak = (0..<(rows * n)).first { i in
                mask[Int(offsets[i / n]) + i % n] == -.infinity && y[i] != 0 && !ref[i].isNaN
              }
              #expect(leak == nil, "\(k.name) n \(n): a -inf position got \(leak.map { y[$0] } ?? 0)")
            }
          }
        }
      }
    }
  }

  @Test func softmaxRowsWithNaNOrOnlyMinusInfinityAreNaN() {
    for k in Self.kernels(.softmax) {
      for n in [3, 8, 19] {
        var x = (0..<n).map { Float($0) }
        x[n / 2] = .nan
        var y = [Float](repeating: 0, count: n)
        RowKernels.softmax(rows: 1, n: n, x: x, xStride: n, y: &y, yStride: n, microkernel: k.index)
        #expect(y.allSatisfy { $0.isNaN }, "\(k.name) n \(n): NaN input gave \(y)")
        let ninf = [Float](repeating: -.infinity, count: n)
        RowKernels.softmax(rows: 1, n: n, x: ninf, xStride: n, y: &y, yStride: n, microkernel: k.index)
        #expect(y.allSatisfy { $0.isNaN }, "\(k.name) n \(n): a row of -inf gave \(y)")
      }
    }
  }

  @Test(arguments: sizes) func geluMatchesTheDefinition(_ n: Int) {
    var rng = SeededRNG(seed: UInt64(n) + 7800)
    var x = (0..<n).map { _ in rng.float() * 8 }
    let specials: [Float] = [0, -0.0, 1e20, -1e20, 30, -30, 1e-30]
    for i in 0..<min(n, specials.count) where n > 20 { x[i] = specials[i] }
    for (op, form) in [(RowKernels.Op.geluErf, FusedEpilogue.GeluForm.exact), (.geluTanh, .tanh)] {
      let ref = x.map { v -> Double in
        let d = Double(v)
        return form == .exact
          ? 0.5 * d * (1 + erf(d / 2.0.squareRoot()))
          : 0.5 * d * (1 + tanh((2 / Double.pi).squareRoot() * (d + 0.044715 * d * d * d)))
      }
      for k in Self.kernels(op) {
        var y = [Float](repeating: .nan, count: n)
        RowKernels.gelu(form, count: n, x: x, y: &y, microkernel: k.index)
        let bad = (0..<n).first { !Self.close(y[$0], ref[$0], abs: 2e-6, rel: 1e-5) }
        #expect(bad == nil, "\(k.name) n \(n): \(bad.map { "gelu(\(x[$0])) = \(y[$0]) vs \(ref[$0])" } ?? "")")
        // In place.
        var z = x
        z.withUnsafeMutableBufferPointer {
          RowKernels.gelu(form, count: n, x: $0.baseAddress!, y: $0.baseAddress!, microkernel: k.index)
        }
        #expect(z == y, "\(k.name) n \(n): in place differs")
      }
    }
  }

  /// Large tensors split across threads into runs and a remainder: every value is written.
  @Test func geluThreadSplitCoversEveryValue() {
    let n = 3 * 16384 + 77
    let x = (0..<n).map { Float($0 % 97) / 10 - 4 }
    var one = [Float](repeating: .nan, count: n), two = one
    RowKernels.gelu(.exact, count: n, x: x, y: &one, threads: 1)
    RowKernels.gelu(.exact, count: n, x: x, y: &two, threads: 3)
    #expect(one == two)
    #expect(!one.contains { $0.isNaN })
  }

  /// Enough rows for the thread split (small calls stay on one thread): the same values.
  @Test func rowsSplitAcrossThreadsMatchOneThread() {
    let rows = 300, n = 129
    let x = (0..<(rows * n)).map { Float($0 % 37) / 9 - 2 }
    let mask = (0..<n).map { $0 % 4 == 0 ? -Float.greatestFiniteMagnitude : 0 }
    let scale = (0..<n).map { Float($0 % 5) / 4 }
    func softmax(_ threads: Int) -> [Float] {
      var y = [Float](repeating: .nan, count: rows * n)
      RowKernels.softmax(
        rows: rows, n: n, x: x, xStride: n, alpha: 0.5, mask: mask, y: &y, yStride: n, threads: threads)
      return y
    }
    func layerNorm(_ threads: Int) -> [Float] {
      var y = [Float](repeating: .nan, count: rows * n)
      RowKernels.layerNorm(
        rows: rows, n: n, x: x, xStride: n, scale: scale, bias: nil, epsilon: 1e-5, y: &y, yStride: n, threads: threads)
      return y
    }
    let one = softmax(1), norm = layerNorm(1)
    #expect(one == softmax(2))
    #expect(norm == layerNorm(2))
    #expect(!one.contains { $0.isNaN } && !norm.contains { $0.isNaN })
  }

  @Test(arguments: sizes) func layerNormMatchesTheDefinition(_ n: Int) {
    var rng = SeededRNG(seed: UInt64(n) + 7900)
    let rows = 4, xs = n + 1, ys = n + 2
    let x = (0..<(rows * xs)).map { i in Float(i / xs) * 3 - 4 + rng.float() * 3 }
    let scale = (0..<n).map { _ in rng.float() * 2 }, bias = (0..<n).map { _ in rng.float() }
    for (useScale, useBias) in [(true, true), (true, false), (false, true), (false, false)] {
      let eps: Float = 1e-5
      var ref = [Double](repeating: 0, count: rows * n), stats = [(Double, Double)]()
      for r in 0..<rows {
        let row = (0..<n).map { Double(x[r * xs + $0]) }
        let mean = row.reduce(0, +) / Double(n)
        let v = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n)
        let inv = 1 / (v + Double(eps)).squareRoot()
        stats.append((mean, inv))
        for i in 0..<n {
          ref[r * n + i] = (row[i] - mean) * inv * (useScale ? Double(scale[i]) : 1) + (useBias ? Double(bias[i]) : 0)
        }
      }
      for k in Self.kernels(.layerNorm) {
        for threads in [1, 2] {
          var y = [Float](repeating: .nan, count: rows * ys)
          var mean = [Float](repeating: .nan, count: rows), inv = mean
          x.withUnsafeBufferPointer { xb in
            scale.withUnsafeBufferPointer { sb in
              bias.withUnsafeBufferPointer { bb in
                RowKernels.layerNorm(
                  rows: rows, n: n, x: xb.baseAddress!, xStride: xs, scale: useScale ? sb.baseAddress! : nil,
                  bias: useBias ? bb.baseAddress! : nil, epsilon: eps, y: &y, yStride: ys, mean: &mean,
                  invStdDev: &inv, threads: threads, microkernel: k.index)
              }
            }
          }
          let bad = (0..<(rows * n)).first { !Self.close(y[($0 / n) * ys + $0 % n], ref[$0], abs: 1e-5, rel: 1e-5) }
          #expect(bad == nil, "\(k.name) n \(n) scale \(useScale) bias \(useBias) threads \(threads)")
          let gap = (0..<(rows - 1)).allSatisfy { r in (n..<ys).allSatisfy { y[r * ys + $0].isNaN } }
          #expect(gap, "\(k.name) n \(n): wrote between rows")
          for r in 0..<rows {
            #expect(
              Self.close(mean[r], stats[r].0, abs: 1e-5, rel: 1e-5)
                && Self.close(inv[r], stats[r].1, abs: 1e-5, rel: 1e-5),
              "\(k.name) n \(n) row \(r): stats \(mean[r]) \(inv[r]) vs \(stats[r])")
          }
        }
      }
    }
  }
}
