internal import COpenBLAS
import Dispatch
import Foundation
internal import SparrowKernels

/// Attention's scores, softmax and weighted sum, one batch item (one head of one sequence) at a
/// time: `P_t = softmax(scale · Q_t K_tᵀ + mask_t)`, `O_t = P_t V_t`. Planned in place of the
/// three steps the passes leave (a strided Q·Kᵀ MatMul, the masked Softmax, a strided P·V
/// MatMul; `fuse`), so a head's score matrix (seq × seq floats: 64 KiB at 128 tokens) is written,
/// normalised and read again while it is in L1/L2, instead of the whole `[B, heads, seq, seq]`
/// tensor going through L3 twice (786 KiB for MiniLM at 128 tokens, over a Zen 3 core's L2), and
/// the two score tensors are no longer allocated. The products are OpenBLAS's, as in
/// `StridedMatMulStep`; items are spread over threads (OpenBLAS single-threaded in each).
///
/// Inputs: 0 Q, 1 K, 2 V (as the two MatMuls read them), 3 the mask (absent: -1).
struct FusedAttentionStep: Step {
  let qk: StridedMatMulStep
  let pv: StridedMatMulStep
  let scale: Float
  /// Per row of the scores (items × m rows), the offset of its mask row; nil: no mask.
  let maskRows: [UInt32]?
  /// At most this many items' score matrices in scratch at once (one per thread).
  static let maxParts = 8

  var items: Int { qk.cOffsets.count }
  var scoreFloats: Int { (qk.shape.m * qk.shape.n + 15) / 16 * 16 }
  /// The products run on the pixel-major kernel (`sparrow_panel_gemm`: B packed per item into
  /// 16-column panels, 6 x 16 blocks, no per-call set-up) unless Q is read transposed or
  /// `SPARROW_ATTENTION=blas` asks for OpenBLAS's (figures). MiniLM's 128 x 128 x 32 products:
  /// OpenBLAS ran them at ~45 GFLOP/s (AVX2, 1 thread).
  var panelProducts: Bool { !qk.shape.transA && !pv.shape.transA && !Self.blas }
  /// Per part: its score matrix, then (panel products) the packed B of the larger product.
  var panelBytes: Int {
    panelProducts
      ? max(
        sparrow_panel_gemm_workspace_bytes(qk.shape.n, qk.shape.k),
        sparrow_panel_gemm_workspace_bytes(pv.shape.n, pv.shape.k))
      : 0
  }
  var partBytes: Int { scoreFloats * 4 + panelBytes }
  var scratchBytes: Int { min(items, Self.maxParts) * partBytes }
  static let blas = ProcessInfo.processInfo.environment["SPARROW_ATTENTION"] == "blas"

  func run(_ c: StepContext) throws(RuntimeError) {
    guard let scratch = c.scratch?.assumingMemoryBound(to: Float.self) else {
      throw RuntimeError("attention: no scratch")
    }
    let q = c.input(0, Float.self), k = c.input(1, Float.self), v = c.input(2, Float.self)
    let mask = c.hasInput(3) ? c.input(3, Float.self) : nil
    let y = c.output(0, Float.self)
    let count = items
    guard count > 0, qk.shape.m > 0, qk.shape.n > 0 else { return }
    sparrow_blas_set_threads(1)
    maskRows.withOptionalPointer { rows in
      let parts = min(max(c.threads, 1), count, Self.maxParts)
      if parts == 1 {
        for t in 0..<count { item(t, q: q, k: k, v: v, mask: mask, rows: rows, y: y, buf: scratch) }
        return
      }
      // Sendable wrappers for the pointers: each item writes its own rows of Y and its own part of scratch.
      let uq = UInt(bitPattern: q), uk = UInt(bitPattern: k), uv = UInt(bitPattern: v), uy = UInt(bitPattern: y)
      let um = UInt(bitPattern: mask), ur = UInt(bitPattern: rows), us = UInt(bitPattern: scratch)
      let stride = partBytes / 4
      DispatchQueue.concurrentPerform(iterations: parts) { p in
        let buf = UnsafeMutablePointer<Float>(bitPattern: us)! + p * stride
        var t = p
        while t < count {
          item(
            t, q: UnsafePointer(bitPattern: uq)!, k: UnsafePointer(bitPattern: uk)!, v: UnsafePointer(bitPattern: uv)!,
            mask: UnsafePointer(bitPattern: um), rows: UnsafePointer(bitPattern: ur),
            y: UnsafeMutablePointer(bitPattern: uy)!, buf: buf)
          t += parts
        }
      }
    }
  }

  /// Item t: its scores into `buf` (m × n, row stride n), softmax in place, `buf · V_t` into Y.
  private func item(
    _ t: Int, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, mask: UnsafePointer<Float>?,
    rows: UnsafePointer<UInt32>?, y: UnsafeMutablePointer<Float>, buf: UnsafeMutablePointer<Float>
  ) {
    let s = qk.shape, o = pv.shape
    let ws = UnsafeMutableRawPointer(buf + scoreFloats), bytes = panelBytes
    // The panel products validate their operands; one refused (it cannot be, for planned
    // shapes) leaves OpenBLAS's to run.
    if panelProducts,
      sparrow_panel_gemm(
        s.m, s.n, s.k, q + qk.aOffsets[t], s.lda, k + qk.bOffsets[t], s.ldb, s.transB ? 1 : 0, buf, s.n, ws, bytes)
        == SPARROW_OK
    {
      RowKernels.softmax(
        rows: s.m, n: s.n, x: buf, xStride: s.n, alpha: scale, mask: mask, maskRows: rows.map { $0 + t * s.m }, y: buf,
        yStride: s.n)
      if sparrow_panel_gemm(
        o.m, o.n, o.k, buf, s.n, v + pv.bOffsets[t], o.ldb, o.transB ? 1 : 0, y + pv.cOffsets[t], o.ldc, ws, bytes)
        == SPARROW_OK
      {
        return
      }
      cblas_sgemm(
        CblasRowMajor, CblasNoTrans, o.transB ? CblasTrans : CblasNoTrans, Int32(o.m), Int32(o.n), Int32(o.k), 1, buf,
        Int32(s.n), v + pv.bOffsets[t], Int32(o.ldb), 0, y + pv.cOffsets[t], Int32(o.ldc))
      return
    }
    cblas_sgemm(
      CblasRowMajor, s.transA ? CblasTrans : CblasNoTrans, s.transB ? CblasTrans : CblasNoTrans, Int32(s.m),
      Int32(s.n), Int32(s.k), 1, q + qk.aOffsets[t], Int32(s.lda), k + qk.bOffsets[t], Int32(s.ldb), 0, buf,
      Int32(s.n))
    RowKernels.softmax(
      rows: s.m, n: s.n, x: buf, xStride: s.n, alpha: scale, mask: mask, maskRows: rows.map { $0 + t * s.m }, y: buf,
      yStride: s.n)
    cblas_sgemm(
      CblasRowMajor, CblasNoTrans, o.transB ? CblasTrans : CblasNoTrans, Int32(o.m), Int32(o.n), Int32(o.k), 1, buf,
      Int32(s.n), v + pv.bOffsets[t], Int32(o.ldb), 0, y + pv.cOffsets[t], Int32(o.ldc))
  }

  /// Replaces every Q·Kᵀ MatMul → masked Softmax → P·V MatMul chain whose two intermediate
  /// values nothing else reads by one fused step, at the P·V step's place (steps in between, such
  /// as the first layer's mask arithmetic, stay before it; Q and K then live a little longer).
  /// Left alone: operands or products that needed copies (views no stride expresses), a mask added
  /// element by element (not per row), a P·V that reads P transposed or with other offsets than
  /// Q·Kᵀ wrote it, gated steps.
  /// `SPARROW_ATTENTION=unfused` keeps the three steps (for side-by-side figures); read once.
  /// `SPARROW_ATTENTION=blas` fuses them with OpenBLAS's products (the earlier form).
  static let enabled = ProcessInfo.processInfo.environment["SPARROW_ATTENTION"] != "unfused"

  static func fuse(_ steps: [PlannedStep], graphOutputs: Set<Int>) -> [PlannedStep] {
    guard enabled else { return steps }
    let (reads, reader) = steps.readers()
    var replaced: [Int: PlannedStep] = [:], dropped: Set<Int> = []
    for (a, s) in steps.enumerated() where s.step is StridedMatMulStep && s.outputIds.count == 1 {
      guard let b = reader[s.outputIds[0]], steps[b].step is MaskedSoftmaxStep, steps[b].outputIds.count == 1,
        let c = reader[steps[b].outputIds[0]], !dropped.contains(a), !dropped.contains(b), replaced[c] == nil,
        let f = fused(s, steps[b], steps[c], reads: reads, outputs: graphOutputs)
      else { continue }
      replaced[c] = f
      dropped.formUnion([a, b])
    }
    guard !replaced.isEmpty else { return steps }
    return steps.indices.compactMap { i in dropped.contains(i) ? nil : (replaced[i] ?? steps[i]) }
  }

  private static func fused(
    _ a: PlannedStep, _ b: PlannedStep, _ c: PlannedStep, reads: [Int: Int], outputs: Set<Int>
  ) -> PlannedStep? {
    guard let qk = a.step as? StridedMatMulStep, let sm = b.step as? MaskedSoftmaxStep,
      let pv = c.step as? StridedMatMulStep, a.gated == nil, b.gated == nil, c.gated == nil,
      a.outputIds.count == 1, b.outputIds.count == 1, c.outputIds.count == 1, a.inputIds.count == 2,
      c.inputIds.count == 2
    else { return nil }
    let scores = a.outputIds[0], probs = b.outputIds[0]
    guard scores >= 0, probs >= 0, b.inputIds.first == scores, c.inputIds[0] == probs, c.inputIds[1] != probs,
      reads[scores] == 1, reads[probs] == 1, !outputs.contains(scores), !outputs.contains(probs)
    else { return nil }
    let s = qk.shape, o = pv.shape, items = qk.cOffsets.count
    guard qk.aCopy == nil, qk.bCopy == nil, qk.outCopy == nil, pv.aCopy == nil, pv.bCopy == nil, pv.outCopy == nil,
      sm.elementwise == nil, sm.n == s.n, sm.rows == items * s.m, items > 0, pv.aOffsets.count == items,
      pv.bOffsets.count == items, pv.cOffsets.count == items, !o.transA, o.m == s.m, o.k == s.n, o.lda == s.n,
      s.ldc == s.n, (0..<items).allSatisfy({ qk.cOffsets[$0] == $0 * s.m * s.n && pv.aOffsets[$0] == qk.cOffsets[$0] })
    else { return nil }
    let masked = sm.maskRows != nil
    guard masked == (b.inputIds.count > 1 && b.inputIds[1] >= 0) else { return nil }
    let step = FusedAttentionStep(qk: qk, pv: pv, scale: sm.scale, maskRows: sm.maskRows)
    let maskId = masked ? b.inputIds[1] : -1
    return PlannedStep(
      step: step, node: c.node, inputIds: [a.inputIds[0], a.inputIds[1], c.inputIds[1], maskId],
      outputIds: c.outputIds,
      inputTypes: [a.inputTypes[0], a.inputTypes[1], c.inputTypes[1], masked ? b.inputTypes[1] : nil],
      outputTypes: c.outputTypes)
  }
}
