internal import SparrowKernels
import Testing

@testable import Sparrow

/// The pixel-major kernel as a linear layer (`PanelLinear`, Kernels/dense/plinear.c) against a
/// plain loop, with every pixel-major microkernel runnable here: row tails (1-13 rows, blocks of
/// 6), output tails (not a multiple of 16), K past the slice length (partial sums), weights with
/// panels sharing zero columns (2:4 shared by 16 rows: compacted) and an all-zero panel, bias,
/// clamp, 1 and 2 threads.
@Suite struct PanelLinearTests {
  enum Zeros: String, CaseIterable, Sendable { case dense, shared24, emptyPanel, random70 }

  static func weight(out: Int, k: Int, zeros: Zeros, seed: UInt64) -> [Float] {
    var rng = SeededRNG(seed: seed)
    var w = (0..<(out * k)).map { _ in rng.float() }
    for o in 0..<out {
      for j in 0..<k {
        switch zeros {
        case .dense: break
        case .shared24: if (j + o / 16) % 4 >= 2 { w[o * k + j] = 0 }  // the same 2 of 4 in a panel
        case .emptyPanel: if o >= 16 && o < 32 { w[o * k + j] = 0 }
        case .random70: if Double.random(in: 0..<1, using: &rng) < 0.7 { w[o * k + j] = 0 }
        }
      }
    }
    return w
  }

  static func reference(_ a: [Float], rows: Int, _ w: [Float], out: Int, k: Int, bias: [Float]?, lo: Float, hi: Float)
    -> [Float]
  {
    var y = [Float](repeating: 0, count: rows * out)
    for r in 0..<rows {
      for o in 0..<out {
        var s = Double(bias?[o] ?? 0)
        for j in 0..<k { s += Double(a[r * k + j]) * Double(w[o * k + j]) }
        y[r * out + o] = min(max(Float(s), lo), hi)
      }
    }
    return y
  }

  @Test(arguments: Zeros.allCases)
  func matchesReference(_ zeros: Zeros) throws {
    let shapes = [(1, 5, 3), (6, 16, 16), (7, 40, 33), (13, 64, 48), (5, 600, 20), (12, 1100, 35)]
    for (rows, k, out) in shapes {
      let w = Self.weight(out: out, k: k, zeros: zeros, seed: UInt64(k * 7 + out))
      let linear = try PanelLinear(out: out, k: k, weights: w)
      let panels = (out + 15) / 16
      if zeros == .dense { #expect(linear.columns == panels * k) }
      if zeros == .shared24 && k % 4 == 0 { #expect(linear.columns == panels * k / 2, "\(k)x\(out)") }
      var rng = SeededRNG(seed: UInt64(rows))
      let a = (0..<(rows * k)).map { _ in rng.float() }
      let bias = (0..<out).map { _ in rng.float() }
      for (b, lo, hi) in [(nil, -Float.infinity, Float.infinity), (bias, -0.5, 0.75)] as [([Float]?, Float, Float)] {
        let ref = Self.reference(a, rows: rows, w, out: out, k: k, bias: b, lo: lo, hi: hi)
        for kernel in DirectSparseConv.pixelMicrokernels where kernel.runnable {
          for threads in [1, 2] {
            let got = try linear.run(
              a: a, rows: rows, bias: b, lo: lo, hi: hi, threads: threads, microkernel: kernel.index)
            #expect(
              firstMismatch(got, ref) == nil,
              "\(zeros) \(rows)x\(k)->\(out) \(kernel.name) threads \(threads) bias \(b != nil)")
          }
        }
      }
    }
  }

  /// `sparrow_panel_gemm` (attention's per-head products): C = A · B or A · Bᵀ with strided
  /// operands, against a plain loop; tails in m, n and k = 1; refusals of bad operands.
  @Test(arguments: [false, true])
  func panelGemmMatchesReference(_ transB: Bool) throws {
    for (m, n, k) in [(1, 1, 1), (7, 17, 3), (128, 128, 32), (13, 40, 130), (6, 16, 600)] {
      let (lda, ldb, ldc) = (k + 3, (transB ? k : n) + 5, n + 2)
      var rng = SeededRNG(seed: UInt64(m * 1000 + n * 10 + k))
      let a = (0..<(m * lda)).map { _ in rng.float() }
      let b = (0..<((transB ? n : k) * ldb)).map { _ in rng.float() }
      var c = [Float](repeating: .nan, count: m * ldc)
      var ref = c
      for i in 0..<m {
        for j in 0..<n {
          var acc = 0.0
          for p in 0..<k { acc += Double(a[i * lda + p]) * Double(transB ? b[j * ldb + p] : b[p * ldb + j]) }
          ref[i * ldc + j] = Float(acc)
        }
      }
      let bytes = sparrow_panel_gemm_workspace_bytes(n, k)
      let ws = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
      defer { ws.deallocate() }
      let status = sparrow_panel_gemm(m, n, k, a, lda, b, ldb, transB ? 1 : 0, &c, ldc, ws, bytes)
      #expect(status == SPARROW_OK)
      for i in 0..<m {
        let got = Array(c[(i * ldc)..<(i * ldc + n)]), want = Array(ref[(i * ldc)..<(i * ldc + n)])
        #expect(firstMismatch(got, want) == nil, "\(m)x\(n)x\(k) transB \(transB) row \(i)")
        #expect(c[(i * ldc + n)..<(i * ldc + ldc)].allSatisfy { $0.isNaN }, "row \(i)'s padding was written")
      }
      // Too small a workspace, or a stride below the row, is refused.
      #expect(sparrow_panel_gemm(m, n, k, a, lda, b, ldb, transB ? 1 : 0, &c, ldc, ws, bytes - 1) != SPARROW_OK)
      #expect(sparrow_panel_gemm(m, n, k, a, k - 1, b, ldb, transB ? 1 : 0, &c, ldc, ws, bytes) != SPARROW_OK)
    }
  }

  @Test func refusesBadInput() throws {
    #expect(throws: KernelError.self) { try PanelLinear(out: 0, k: 4, weights: []) }
    #expect(throws: KernelError.self) { try PanelLinear(out: 2, k: 4, weights: [1, 2, 3]) }
    let l = try PanelLinear(out: 2, k: 3, weights: [Float](repeating: 1, count: 6))
    #expect(throws: KernelError.self) { _ = try l.run(a: [1, 2], rows: 1) }
    #expect(throws: KernelError.self) { _ = try l.run(a: [1, 2, 3], rows: 1, microkernel: 99) }
    #expect(throws: KernelError.self) { _ = try l.run(a: [1, 2, 3], rows: 1, lo: 1, hi: 0) }
    #expect(try l.run(a: [], rows: 0).isEmpty)
  }
}
