import Dispatch
internal import COpenBLAS
internal import SparrowKernels

/// Batched dense products on OpenBLAS for activation x activation MatMuls (attention's Q·Kᵀ and
/// P·V) and Einsum: `C[t] = op(A[t]) · op(B[t])`, each matrix row-major at an element offset of
/// its operand (precomputed per batch index, so broadcast batch dimensions cost nothing).
enum BatchedGemm {
  struct Shape: Sendable {
    var m: Int, n: Int, k: Int
    /// Leading dimensions (elements) of A, B and C as stored.
    var lda: Int, ldb: Int, ldc: Int
    var transA = false, transB = false
  }

  /// Runs every product; with more than one thread, batch items are spread over threads, each
  /// calling OpenBLAS single-threaded.
  static func run(
    _ s: Shape, a: UnsafePointer<Float>, aOffsets: [Int], b: UnsafePointer<Float>, bOffsets: [Int],
    c: UnsafeMutablePointer<Float>, cOffsets: [Int], threads: Int
  ) {
    let count = cOffsets.count
    guard count > 0, s.m > 0, s.n > 0 else { return }
    if s.k == 0 {
      for t in 0..<count { for i in 0..<s.m { (c + cOffsets[t] + i * s.ldc).update(repeating: 0, count: s.n) } }
      return
    }
    let ta = s.transA ? CblasTrans : CblasNoTrans, tb = s.transB ? CblasTrans : CblasNoTrans
    func one(_ t: Int) {
      cblas_sgemm(
        CblasRowMajor, ta, tb, Int32(s.m), Int32(s.n), Int32(s.k), 1, a + aOffsets[t], Int32(s.lda), b + bOffsets[t],
        Int32(s.ldb), 0, c + cOffsets[t], Int32(s.ldc))
    }
    if threads > 1 && count > 1 {
      sparrow_blas_set_threads(1)
      // Sendable wrappers for the pointers: each batch item writes its own C.
      let ua = UInt(bitPattern: a), ub = UInt(bitPattern: b), uc = UInt(bitPattern: c)
      let parts = min(threads, count)
      DispatchQueue.concurrentPerform(iterations: parts) { p in
        let pa = UnsafePointer<Float>(bitPattern: ua)!, pb = UnsafePointer<Float>(bitPattern: ub)!
        let pc = UnsafeMutablePointer<Float>(bitPattern: uc)!
        var t = p
        while t < count {
          cblas_sgemm(
            CblasRowMajor, ta, tb, Int32(s.m), Int32(s.n), Int32(s.k), 1, pa + aOffsets[t], Int32(s.lda),
            pb + bOffsets[t], Int32(s.ldb), 0, pc + cOffsets[t], Int32(s.ldc))
          t += parts
        }
      }
    } else {
      sparrow_blas_set_threads(Int32(threads))
      for t in 0..<count { one(t) }
    }
  }
}
