internal import SparrowKernels

/// A linear layer on the pixel-major kernel (Kernels/dense/plinear.c): `Y = clamp(A · Wᵀ + bias)`
/// with A (`rows x K`) and Y (`rows x out`) row-major as ONNX holds them, so no transpose either
/// way; blocks of 6 token rows x 16 outputs. Each 16-output panel keeps only the weight columns
/// with a nonzero in one of its rows, so an N:M weight whose pattern is shared by 16 rows
/// (`prune --share-rows 16`) skips the pruned FMAs; a dense weight keeps all. Immutable once
/// built: one value serves many sessions.
public final class PanelLinear: @unchecked Sendable {
  let handle: OpaquePointer
  public let out: Int
  public let k: Int

  /// `weights` is `out x k`, row-major, dense with zeros.
  public init(out: Int, k: Int, weights: [Float]) throws(KernelError) {
    guard out > 0, k > 0, weights.count == out * k else {
      throw KernelError(kind: .invalidArgument, message: "linear: \(weights.count) weights for \(out) x \(k)")
    }
    var h: OpaquePointer? = nil
    try check(weights.withUnsafeBufferPointer { sparrow_plinear_create(out, k, $0.baseAddress!, &h) }, "linear")
    guard let h else { throw KernelError(kind: .unknown, message: "linear: no handle") }
    handle = h
    self.out = out
    self.k = k
  }

  deinit { sparrow_plinear_free(handle) }

  /// The (16-output panel, column) pairs kept: panels x K for a dense weight, fewer where
  /// panels share zero columns (their FMAs are skipped).
  public var columns: Int { sparrow_plinear_columns(handle) }

  /// `rows` rows of A (`lda` floats apart) into Y (`ldy` apart). `microkernel` forces a
  /// pixel-major kernel (tests); nil picks the active ISA's.
  func run(
    a: UnsafePointer<Float>, rows: Int, lda: Int, bias: UnsafePointer<Float>?, lo: Float, hi: Float,
    y: UnsafeMutablePointer<Float>, ldy: Int, threads: Int, microkernel: Int? = nil
  ) throws(KernelError) {
    let nt = max(1, threads)
    var plan = sparrow_plinear_plan()
    try check(
      sparrow_plinear_prepare(
        &plan, handle, a, rows, lda, bias, lo, hi, y, ldy, Int32(clamping: nt),
        microkernel.map { $0 < 0 ? Int.max : $0 } ?? -1),
      "linear")
    withUnsafeMutablePointer(to: &plan) { p in
      TileRunner.run(tasks: p.pointee.tasks, threads: nt, sparrow_plinear_task, p)
    }
  }

  /// Array convenience (tests): A is `rows x k`, the result `rows x out`.
  public func run(
    a: [Float], rows: Int, bias: [Float]? = nil, lo: Float = -.infinity, hi: Float = .infinity, threads: Int = 1,
    microkernel: Int? = nil
  ) throws(KernelError) -> [Float] {
    guard rows >= 0, a.count == rows * k, bias.map({ $0.count == out }) ?? true else {
      throw KernelError(kind: .invalidArgument, message: "linear: A or bias has the wrong size")
    }
    var y = [Float](repeating: .nan, count: max(rows * out, 1))
    try a.withUnsafeBufferPointer { (ap) throws(KernelError) in
      try y.withUnsafeMutableBufferPointer { (yp) throws(KernelError) in
        try bias.withOptionalPointer { (b) throws(KernelError) in
          try run(
            a: ap.baseAddress ?? UnsafePointer(yp.baseAddress!), rows: rows, lda: k, bias: b, lo: lo, hi: hi,
            y: yp.baseAddress!, ldy: out, threads: threads, microkernel: microkernel)
        }
      }
    }
    return Array(y.prefix(rows * out))
  }
}
