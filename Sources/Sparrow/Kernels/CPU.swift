internal import SparrowKernels

/// The instruction sets Sparrow has kernels for.
public enum ISA: String, Sendable, CaseIterable {
  case scalar, avx2, neon, avx512

  init(_ c: sparrow_isa) {
    switch c {
    case SPARROW_ISA_AVX2: self = .avx2
    case SPARROW_ISA_AVX512: self = .avx512
    case SPARROW_ISA_NEON: self = .neon
    default: self = .scalar
    }
  }

  var c: sparrow_isa {
    switch self {
    case .scalar: return SPARROW_ISA_SCALAR
    case .avx2: return SPARROW_ISA_AVX2
    case .neon: return SPARROW_ISA_NEON
    case .avx512: return SPARROW_ISA_AVX512
    }
  }

  /// Whether this CPU runs kernels of this ISA (scalar always; AVX2 on an AVX-512 CPU too).
  public var supported: Bool { sparrow_isa_supported(c) != 0 }

  /// The ISA kernels run with now (the best the CPU has, unless `SPARROW_ISA` forces one).
  public static var active: ISA { ISA(sparrow_active_isa()) }
  /// The best ISA this CPU supports.
  public static var detected: ISA { ISA(sparrow_detected_isa()) }

  /// Forces an ISA for this process; returns the one actually in force (scalar if the CPU
  /// lacks the one asked for). For tests and benchmarks: do not call while kernels run.
  /// Matrices and kernels made before keep the kernel they were bound to.
  @discardableResult
  public static func force(_ isa: ISA) -> ISA { ISA(sparrow_set_isa(isa.c)) }
}

/// A kernel in the library's one list (Kernels/spmm/ukernels.inc), which also feeds the
/// dispatcher, the tests and `sparrow bench kernels`: every sparse microkernel, and OpenBLAS's
/// entries for the dense and channel formats.
public struct MicroKernel: Sendable, Hashable, CustomStringConvertible {
  public let index: Int
  public let name: String
  public let format: WeightFormat.Kind
  public let isa: ISA
  /// Block shape required (BSR), or nil for any. N:M: `blockRows` R means the kernel needs the
  /// pattern shared by blocks of R rows (`PackedMatrix.nmSharedRows`).
  public let blockRows: Int?, blockCols: Int?
  /// Whether this CPU can run it.
  public let runnable: Bool
  public var description: String { name }

  /// Every kernel compiled into this build.
  public static let all: [MicroKernel] = (0..<sparrow_ukernel_count()).compactMap { i in
    guard let d = sparrow_ukernel_get(i)?.pointee else { return nil }
    return MicroKernel(
      index: i, name: String(cString: d.name), format: WeightFormat.Kind(d.format), isa: ISA(d.isa),
      blockRows: d.block_rows == 0 ? nil : Int(d.block_rows),
      blockCols: d.block_cols == 0 ? nil : Int(d.block_cols),
      runnable: sparrow_ukernel_runnable(i) != 0)
  }
}

/// Whether the kernels were built with OpenMP (`SPARROW_OPENMP=1`).
public var kernelsHaveOpenMP: Bool { sparrow_has_openmp() != 0 }

/// OpenBLAS, the dense baseline and a dense candidate of every layer.
public enum BLAS {
  /// The core OpenBLAS chose for its kernels when it loaded ("Haswell", "Prescott", "neoversen1").
  public static var core: String { String(cString: sparrow_blas_core()) }

  /// The `OPENBLAS_CORETYPE` to load OpenBLAS with, or nil when its own choice is right.
  ///
  /// Workaround: a DYNAMIC_ARCH OpenBLAS that does not know the CPU model (Debian's 0.3.21 on
  /// Intel's family 6 model 207, for one) falls back to an SSE3 core: its sgemm then runs 3-4x
  /// slower than its Haswell kernels on the same CPU. When Sparrow's own probe found AVX2 and FMA
  /// and OpenBLAS chose a core without them, this names Haswell (AVX2 + FMA, safe on every such
  /// CPU). The variable is read only when the library loads, so a process must be started with
  /// it (`sparrow` re-executes itself). Can go when the OpenBLAS in use knows the CPU.
  ///
  /// Haswell is also named in place of OpenBLAS's AVX-512 cores (SkylakeX, Cooperlake,
  /// SapphireRapids): their small-matrix sgemm kernels, which OpenBLAS takes for every product
  /// of M·N·K ≤ 10⁶ (attention heads, small convolutions, the batched products of activations),
  /// allocate on every call. Found on an AMD Zen 4 that Debian's 0.3.21 runs as "Cooperlake": 9
  /// heap allocations per PP-OCR run (Tests/alloc), where a steady-state run allocates none.
  /// The cost is OpenBLAS's own 512-bit kernels on large products: nothing on Zen 4 (512-bit
  /// FMAs run as two 256-bit halves), more on Intel's two-FMA-port server cores, where Sparrow's
  /// own AVX-512 GEMM (`gemm_f32_8x48__avx512f`) is the dense candidate the planner times anyway.
  public static var coreTypeOverride: String? {
    guard ISA.avx2.supported else { return nil }
    let preAVX2: Set<String> = [
      "prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "sandybridge", "barcelona", "bobcat",
      "bulldozer", "piledriver", "steamroller", "opteron", "opteron_sse3", "nano", "katmai", "coppermine",
      "northwood", "banias", "athlon",
    ]
    let allocatingSmallKernels: Set<String> = ["skylakex", "cooperlake", "sapphirerapids"]
    let name = core.lowercased()
    return preAVX2.contains(name) || allocatingSmallKernels.contains(name) ? "Haswell" : nil
  }
}
