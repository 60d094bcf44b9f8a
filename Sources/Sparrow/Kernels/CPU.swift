internal import SparrowKernels

/// The instruction sets Sparrow has kernels for.
public enum ISA: String, Sendable, CaseIterable {
  case scalar, avx2, neon

  init(_ c: sparrow_isa) {
    switch c {
    case SPARROW_ISA_AVX2: self = .avx2
    case SPARROW_ISA_NEON: self = .neon
    default: self = .scalar
    }
  }

  var c: sparrow_isa {
    switch self {
    case .scalar: return SPARROW_ISA_SCALAR
    case .avx2: return SPARROW_ISA_AVX2
    case .neon: return SPARROW_ISA_NEON
    }
  }

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
  /// Block shape required (BSR), or nil for any.
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
