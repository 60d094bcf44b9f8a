import Testing

@testable import Sparrow

/// The automatic kernel choice under the ISA in force (run the suite with `SPARROW_ISA=scalar`,
/// `avx2` or `avx512` to check each path): a family's kernel of that ISA, or of the level below
/// when the family has none (AVX-512 falls back to AVX2, then scalar).
@Suite struct ISADispatchTests {
  /// The kernel-name suffixes the active ISA may bind, best first.
  static var expectedSuffixes: [String] {
    switch ISA.active {
    case .avx512: return ["__avx512f", "__avx2", "__scalar"]
    case .avx2: return ["__avx2", "__scalar"]
    case .neon: return ["__neon", "__scalar"]
    case .scalar: return ["__scalar"]
    }
  }

  @Test func levelsBelowTheDetectedOneAreSupported() {
    #expect(ISA.scalar.supported)
    #expect(ISA.detected.supported)
    if ISA.detected == .avx512 { #expect(ISA.avx2.supported) }
    if ISA.detected != .avx512 { #expect(!ISA.avx512.supported) }
    #expect(ISA.active.supported)
  }

  /// Packed dense GEMM: each ISA has its own kernel, so the choice is exactly the active ISA's.
  @Test func packedBindsTheActiveISAKernel() throws {
    var rng = SeededRNG(seed: 7)
    let w = patternedWeights(format: .packed, m: 20, k: 33, sparsity: 0, rng: &rng)
    let packed = try PackedMatrix(dense: w, rows: 20, cols: 33, format: .packed)
    let want = Self.expectedSuffixes[0]
    #expect(packed.kernelName.hasSuffix(want), "packed kernel \(packed.kernelName) under ISA \(ISA.active)")
  }

  /// BSR has no AVX-512 kernel: under AVX-512 it binds the AVX2 one, never the scalar fallback.
  @Test func familiesWithoutTheActiveISAFallOneLevel() throws {
    var rng = SeededRNG(seed: 8)
    let w = patternedWeights(format: .bsr(rows: 4, cols: 1), m: 12, k: 40, sparsity: 0.8, rng: &rng)
    let bsr = try PackedMatrix(dense: w, rows: 12, cols: 40, format: .bsr(rows: 4, cols: 1))
    let suffixes = Self.expectedSuffixes
    let hasAVX2BSR = MicroKernel.all.contains { $0.format == .bsr && $0.isa == .avx2 }
    if ISA.active == .avx512, hasAVX2BSR {
      #expect(bsr.kernelName.hasSuffix("__avx2"), "BSR kernel \(bsr.kernelName) under AVX-512")
    } else {
      #expect(suffixes.contains { bsr.kernelName.hasSuffix($0) }, "BSR kernel \(bsr.kernelName)")
    }
  }

  /// The depthwise and pixel-major families have AVX-512 kernels (2026-12-06): under AVX-512
  /// they bind them, under AVX2 the AVX2 ones.
  @Test func depthwiseAndPixelMajorBindTheActiveISAKernel() {
    let want = Self.expectedSuffixes[0]
    #expect(DepthwiseKernel.kernelName.hasSuffix(want), "depthwise \(DepthwiseKernel.kernelName) under \(ISA.active)")
    #expect(
      DirectSparseConv.pixelKernelName.hasSuffix(want), "pixel-major \(DirectSparseConv.pixelKernelName) under \(ISA.active)")
  }

  /// The row kernels (softmax, GELU, LayerNorm) have no AVX-512 entries: under AVX-512 each op
  /// binds its AVX2 kernel, not the scalar libm one (a bug until 2026-12-03: the AVX-512 level
  /// fell straight to scalar, GELU and softmax took 60% of a 90%-sparse MiniLM run).
  @Test func rowKernelsFallOneLevelNotToScalar() {
    for op in RowKernels.Op.allCases {
      let name = RowKernels.kernelName(op)
      let best = Self.expectedSuffixes.first { s in
        RowKernels.microkernels.contains { $0.op == op && $0.runnable && $0.name.hasSuffix(s) }
      }
      #expect(best.map { name.hasSuffix($0) } == true, "\(op) binds \(name) under \(ISA.active), best \(best ?? "none")")
    }
  }

  /// CSR and N:M have AVX-512 kernels: the active ISA's own, and a 2:4 pattern shared by blocks of
  /// 8 rows binds the shared-pattern kernel of the active ISA (x86: AVX-512 and scalar have one,
  /// AVX2 falls back to its plain N:M kernel; NEON has one).
  @Test func sparseFamiliesBindTheActiveISAKernel() throws {
    var rng = SeededRNG(seed: 9)
    let w = patternedWeights(format: .csr, m: 16, k: 40, sparsity: 0.8, rng: &rng)
    let csr = try PackedMatrix(dense: w, rows: 16, cols: 40, format: .csr)
    let plain = patternedWeights(format: .nm(n: 2, m: 4), m: 16, k: 40, sparsity: 0.5, rng: &rng)
    let nm = try PackedMatrix(dense: plain, rows: 16, cols: 40, format: .nm(n: 2, m: 4))
    let shared = sharedNMWeights(format: .nm(n: 2, m: 4), m: 16, k: 40, rows: 8, sparsity: 0.5, rng: &rng)
    let snm = try PackedMatrix(dense: shared, rows: 16, cols: 40, format: .nm(n: 2, m: 4))
    #expect(nm.nmSharedRows == 0 && snm.nmSharedRows == 8)
    let want = Self.expectedSuffixes[0]
    #expect(csr.kernelName.hasSuffix(want), "CSR kernel \(csr.kernelName) under \(ISA.active)")
    #expect(nm.kernelName.hasSuffix(want) && nm.kernelName.hasPrefix("spmm_nm_f32_1x"), "N:M kernel \(nm.kernelName)")
    if ISA.active == .avx2 {
      #expect(snm.kernelName == "spmm_nm_f32_1x64__avx2", "shared N:M kernel \(snm.kernelName) under AVX2")
    } else {
      #expect(
        snm.kernelName.hasPrefix("spmm_nm_f32_8x") && snm.kernelName.hasSuffix(want), "shared N:M \(snm.kernelName)")
    }
  }

  /// The AVX-512 packed kernel is listed on x86-64 and runnable exactly when the CPU has AVX-512F.
  @Test func avx512KernelIsListedAndRunnableWhenSupported() {
    let avx512 = MicroKernel.all.filter { $0.isa == .avx512 }
    #if arch(x86_64)
      #expect(avx512.contains { $0.format == .packed })
      #expect(avx512.contains { $0.format == .csr } && avx512.filter { $0.format == .nm }.count == 2)
    #endif
    for k in avx512 { #expect(k.runnable == ISA.avx512.supported, "\(k.name)") }
  }
}

/// Packed GEMM shapes past the kernels' cache blocks: K over one 256-deep slice (partial sums
/// through Y), more than 128 panels of 8 rows (two panel groups), and column rests on each path
/// (masked 16-lane vectors, the matrix-vector columns), every runnable kernel and call variant.
@Suite struct PackedGemmBlockingTests {
  static let cases: [KernelCase] = [
    KernelCase(format: .packed, m: 1031, n: 18, k: 300, sparsity: 0, seed: 901),
    KernelCase(format: .packed, m: 37, n: 101, k: 777, sparsity: 0.5, seed: 902),
    KernelCase(format: .packed, m: 16, n: 12, k: 257, sparsity: 0, seed: 903),
    KernelCase(format: .packed, m: 9, n: 49, k: 576, sparsity: 0, seed: 904),
  ]

  @Test(arguments: cases) func matchesReference(_ c: KernelCase) throws { try checkCase(c) }
}

/// Sparse kernels past their blocks: more than one 128-column AVX-512 panel (the even split,
/// masked last vectors), K over several X blocks and shared-pattern slices (256 rows), more than
/// 64 blocks of 8 rows (two chunks of the 8x48 kernel), a partial last row block; every
/// runnable kernel and call variant against the dense reference.
@Suite struct SparseBlockingTests {
  static let cases: [KernelCase] = [
    KernelCase(format: .csr, m: 21, n: 300, k: 700, sparsity: 0.9, seed: 911),
    KernelCase(format: .csr, m: 9, n: 129, k: 70, sparsity: 0.5, seed: 912),
    KernelCase(format: .nm(n: 2, m: 4), m: 11, n: 200, k: 301, sparsity: 0.5, seed: 913),
    KernelCase(format: .nm(n: 2, m: 4), m: 530, n: 21, k: 600, sparsity: 0.5, seed: 914, sharedRows: 8),
    KernelCase(format: .nm(n: 2, m: 4, groupStride: 9), m: 20, n: 150, k: 720, sparsity: 0.5, seed: 915, sharedRows: 8),
  ]

  @Test(arguments: cases) func matchesReference(_ c: KernelCase) throws { try checkCase(c) }
}
