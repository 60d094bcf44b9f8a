import Testing

@testable import Sparrow

/// The int8 GEMM kernels (Kernels/qgemm, every entry of its list this CPU runs) through the Swift
/// wrapper against a plain reference written here: int64 sums of W · X, minus x_zero times the
/// row's sum, plus the bias, times the float scale, rounded half to even, plus the zero point,
/// clamped (or dequantized to float): bit-exact equality. Shapes cover k = 1, k % 4 ≠ 0, m < MR,
/// m % MR ≠ 0, n = 1 and n around the 8/16/64-column blocks; x = 255 with w = ±127/-128 (where
/// vpmaddubsw would saturate int16); transposed outputs (the MatMul path) and several threads;
/// weights with 0, 50, 90 and 100% zeros through the dense and the sparse (1x4 block) kernels.
@Suite struct QGemmKernelTests {
  struct Case: CustomStringConvertible, Sendable {
    var m: Int, k: Int, n: Int
    var seed: UInt64
    var description: String { "m \(m) k \(k) n \(n) seed \(seed)" }
  }

  static let cases: [Case] = [
    Case(m: 1, k: 1, n: 1, seed: 1), Case(m: 3, k: 5, n: 7, seed: 2), Case(m: 4, k: 4, n: 8, seed: 3),
    Case(m: 5, k: 9, n: 17, seed: 4), Case(m: 13, k: 75, n: 65, seed: 5), Case(m: 8, k: 64, n: 129, seed: 6),
    Case(m: 17, k: 3, n: 100, seed: 7), Case(m: 6, k: 300, n: 31, seed: 8),
    // Past the AVX2 kernels' column blocks (dense: 96 KB of X, 320 columns at k 300; sparse: 64).
    Case(m: 9, k: 300, n: 403, seed: 9),
  ]

  enum Out: CaseIterable { case u8, s8, f32, u8Transposed }

  /// The reference output of row r, column c as Float (the value of the stored type).
  static func reference(
    w: [Int8], x: [UInt8], k: Int, n: Int, r: Int, c: Int, xZero: Int32, bias: [Int32]?, scale: [Float],
    fbias: [Float]?, output: QOutput
  ) -> Float {
    var acc: Int64 = 0
    for j in 0..<k { acc += Int64(w[r * k + j]) * (Int64(x[j * n + c]) - Int64(xZero)) }
    acc += Int64(bias?[r] ?? 0)
    let v = Float(Int32(truncatingIfNeeded: acc)) * scale[r]
    switch output {
    case .float(let lo, let hi): return min(max(v + (fbias?[r] ?? 0), lo), hi)
    case .quantized(_, let zero, let lo, let hi):
      return min(max(v.rounded(.toNearestOrEven) + Float(zero), Float(lo)), Float(hi))
    }
  }

  @Test(arguments: cases, Out.allCases)
  func kernelsEqualTheIntegerReference(_ t: Case, _ out: Out) throws {
    var rng = SeededRNG(seed: t.seed &* 31 &+ UInt64(Out.allCases.firstIndex(of: out)!))
    let extreme = t.seed % 3 == 0
    let zeros = [0.0, 0.5, 0.9, 1.0][Int(t.seed % 4)]
    let w = (0..<(t.m * t.k)).map { _ -> Int8 in
      let v: Int8 = extreme ? (Bool.random(using: &rng) ? 127 : -128) : Int8.random(in: -128...127, using: &rng)
      return Double.random(in: 0..<1, using: &rng) < zeros ? 0 : v
    }
    let x = (0..<(t.k * t.n)).map { _ in extreme ? 255 : UInt8.random(in: 0...255, using: &rng) }
    let xZero = Int32.random(in: 0...255, using: &rng)
    let bias = t.seed % 2 == 0 ? (0..<t.m).map { _ in Int32.random(in: -20000...20000, using: &rng) } : nil
    let scale = (0..<t.m).map { _ in Float.random(in: 1e-5...(out == .f32 ? 1e-2 : 2e-3), using: &rng) }
    let fbias = out == .f32 ? (0..<t.m).map { _ in Float.random(in: -1...1, using: &rng) } : nil
    let output: QOutput
    switch out {
    case .u8, .u8Transposed:
      let zero = Int32.random(in: 0...255, using: &rng)
      output = .quantized(signed: false, zero: zero, lo: t.seed % 4 == 1 ? zero : 0, hi: 255)  // Relu on some
    case .s8: output = .quantized(signed: true, zero: Int32.random(in: -128...127, using: &rng), lo: -128, hi: 127)
    case .f32: output = .float(lo: t.seed % 2 == 0 ? 0 : -.infinity, hi: .infinity)
    }
    var ref = [Float](repeating: 0, count: t.m * t.n)
    for r in 0..<t.m {
      for c in 0..<t.n {
        ref[r * t.n + c] = Self.reference(
          w: w, x: x, k: t.k, n: t.n, r: r, c: c, xZero: xZero, bias: bias, scale: scale, fbias: fbias, output: output)
      }
    }
    var xp = [UInt8](repeating: 0, count: QGemm.packedXBytes(k: t.k, n: t.n))
    x.withUnsafeBytes { xb in
      xp.withUnsafeMutableBytes {
        QGemm.packX(xb.baseAddress!, k: t.k, n: t.n, kStride: t.n, nStride: 1, signed: false, into: $0.baseAddress!)
      }
    }
    var ran = 0
    let kernels =
      (0..<QGemm.kernelCount).filter(QGemm.runnable).map { (false, $0) }
      + (0..<QGemm.sparseCount).filter(QGemm.sparseRunnable).map { (true, $0) }
    for (sparse, kernel) in kernels {
      let packed = w.withUnsafeBufferPointer {
        QPackedLinear(
          weights: $0.baseAddress!, m: t.m, k: t.k, mStride: t.k, kStride: 1, scale: scale, bias: bias, fbias: fbias,
          output: output, sparse: sparse, kernel: kernel)
      }
      #expect(packed.isSparse == sparse)
      #expect(packed.kernel == kernel)
      // Stored bytes: every nonzero 1x4 block's 4 values and 4-byte group index (sparse) or the
      // padded panels (dense), plus per row its sum, scale, bias and row pointer.
      let perRow = 8 + (bias == nil ? 0 : 4) + (fbias == nil ? 0 : 4)
      let blocks = (0..<t.m).reduce(0) { n, r in
        n
          + stride(from: 0, to: t.k, by: 4).filter { k0 in (k0..<min(k0 + 4, t.k)).contains { w[r * t.k + $0] != 0 } }
          .count
      }
      let expected =
        sparse ? blocks * 8 + (t.m + 1) * 4 : max(8, QGemm.packedWeightBytes(kernel: kernel, m: t.m, k: t.k))
      #expect(packed.storedBytes == expected + t.m * perRow, "\(packed.kernelName) \(t)")
      let transposed = out == .u8Transposed
      var got = [Float](repeating: .nan, count: t.m * t.n)
      if out == .f32 {
        xp.withUnsafeBytes { xb in
          got.withUnsafeMutableBytes {
            packed.run(
              packedX: xb.baseAddress!, n: t.n, xZero: xZero, y: $0.baseAddress!, rowStride: t.n, colStride: 1,
              threads: 2)
          }
        }
      } else {
        var y = [UInt8](repeating: 0xAB, count: t.m * t.n)
        xp.withUnsafeBytes { xb in
          y.withUnsafeMutableBytes {
            packed.run(
              packedX: xb.baseAddress!, n: t.n, xZero: xZero, y: $0.baseAddress!, rowStride: transposed ? 1 : t.n,
              colStride: transposed ? t.m : 1, threads: ran % 2 + 1)
          }
        }
        for r in 0..<t.m {
          for c in 0..<t.n {
            let b = y[transposed ? c * t.m + r : r * t.n + c]
            got[r * t.n + c] = out == .s8 ? Float(Int8(bitPattern: b)) : Float(b)
          }
        }
      }
      let bad = (0..<got.count).first { got[$0].bitPattern != ref[$0].bitPattern && got[$0] != ref[$0] }
      #expect(
        bad == nil,
        "\(packed.kernelName) \(t) \(out): element \(bad ?? -1) is \(bad.map { got[$0] } ?? 0), reference \(bad.map { ref[$0] } ?? 0)"
      )
      ran += 1
    }
    #expect(ran >= 1)
  }

  /// The list holds a scalar entry first; the automatic choice is runnable and belongs to the
  /// ISA in force (SPARROW_ISA=scalar|avx2 runs pick those; AVX-512 picks VNNI where the CPU
  /// has it, else falls to AVX2).
  @Test func listAndAutomaticChoice() {
    #expect(QGemm.kernelCount >= 1)
    #expect(QGemm.kernelName(0).hasSuffix("__scalar"))
    #expect(QGemm.runnable(QGemm.automatic))
    let name = QGemm.kernelName(QGemm.automatic)
    switch ISA.active {
    case .scalar: #expect(name.hasSuffix("__scalar"))
    case .avx2: #expect(name.hasSuffix("__avx2"))
    case .avx512: #expect(name.hasSuffix("__avx512vnni") || name.hasSuffix("__avx2"))
    case .neon: #expect(name.contains("__neon"))
    }
  }
}
