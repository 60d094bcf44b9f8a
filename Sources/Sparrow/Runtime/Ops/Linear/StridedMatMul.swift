/// An activation×activation MatMul with Transposes folded into it (FoldMatMulTranspose): A and B
/// are read, and the product written, through strided views of the tensors as stored. A view
/// whose matrix has unit stride along its rows or its columns is a plain or transposed operand
/// with that leading dimension; any other permutation (rare: the batch axes mixed into the
/// matrix) is copied into scratch first, or, for the output, the product is computed into
/// scratch and then copied out, as the Transposes would have done.
struct StridedMatMulStep: Step {
  let shape: BatchedGemm.Shape
  let aOffsets: [Int], bOffsets: [Int], cOffsets: [Int]
  /// Copies of operands no view can express (into scratch, contiguous in their logical shape).
  let aCopy: StridedWalk?, bCopy: StridedWalk?
  /// The product computed contiguously into scratch, then walked into the output.
  let outCopy: StridedWalk?
  let aCount: Int, bCount: Int, cCount: Int

  var scratchBytes: Int {
    [aCopy != nil ? aCount : 0, bCopy != nil ? bCount : 0, outCopy != nil ? cCount : 0].map(Self.span).reduce(0, +)
  }
  private static func span(_ floats: Int) -> Int { (floats * 4 + 63) / 64 * 64 }

  /// A logical operand: shape, strides (elements) into the stored tensor, and whether it is a copy.
  struct View {
    var shape: [Int], strides: [Int]
    var copy: StridedWalk?
    var matrix: (trans: Bool, ld: Int) {
      let r = shape.count
      let (rows, cols) = (shape[r - 2], shape[r - 1])
      if cols == 1 || strides[r - 1] == 1 { return (false, rows == 1 ? max(cols, 1) : strides[r - 2]) }
      return (true, cols == 1 ? max(rows, 1) : strides[r - 1])
    }

    /// `stored` read through `perm` (nil: as stored).
    init(stored: [Int], perm: [Int]?) {
      let s = StridedWalk.contiguousStrides(stored)
      shape = perm.map { $0.map { stored[$0] } } ?? stored
      strides = perm.map { $0.map { s[$0] } } ?? s
      let r = shape.count
      let (rows, cols) = (shape[r - 2], shape[r - 1])
      let plain = cols == 1 || (strides[r - 1] == 1 && (rows == 1 || strides[r - 2] >= cols))
      let transposed = rows == 1 || (strides[r - 2] == 1 && (cols == 1 || strides[r - 1] >= rows))
      if !plain && !transposed {
        copy = StridedWalk(dims: shape, strides: strides)
        strides = StridedWalk.contiguousStrides(shape)
      }
    }

    /// Element offsets of the matrix of every index of `batch` (broadcast from this view's batch axes).
    func offsets(_ batch: [Int]) -> [Int] {
      let own = Array(shape.dropLast(2)), ownStrides = Array(strides.dropLast(2))
      let pad = batch.count - own.count
      let total = batch.reduce(1, *)
      return (0..<total).map { t in
        var rem = t, off = 0
        for d in stride(from: batch.count - 1, through: 0, by: -1) {
          let coord = rem % batch[d]
          rem /= batch[d]
          let o = d - pad
          if o >= 0 && own[o] != 1 { off += coord * ownStrides[o] }
        }
        return off
      }
    }
  }

  static func build(_ c: inout BuildContext, _ v: FusedEpilogue.MatMulViews) throws(ModelError) -> any Step {
    let a = try c.input(0), b = try c.input(1)
    guard a.dtype == .float32, b.dtype == .float32 else {
      throw c.error("MatMul takes float32 tensors, got \(a) and \(b)")
    }
    for (t, p, name) in [(a, v.a, "A"), (b, v.b, "B")] {
      if let p, p.count != t.shape.count || Set(p) != Set(0..<t.shape.count) {
        throw c.error(
          "the Transpose folded into \(name) has perm \(p), not a permutation of \(name)'s \(t.shape.count) axes")
      }
      guard (p?.count ?? t.shape.count) >= 2 else { throw c.error("a folded Transpose needs operands of rank >= 2") }
    }
    let av = View(stored: a.shape, perm: v.a), bv = View(stored: b.shape, perm: v.b)
    let (m, k) = (av.shape[av.shape.count - 2], av.shape[av.shape.count - 1])
    let (kb, n) = (bv.shape[bv.shape.count - 2], bv.shape[bv.shape.count - 1])
    guard k == kb else {
      throw c.error("inner sizes differ: A \(av.shape), B \(bv.shape) (after the folded Transposes)")
    }
    guard let batch = broadcastShapes(Array(av.shape.dropLast(2)), Array(bv.shape.dropLast(2))) else {
      throw c.error("batch dimensions of A \(av.shape) and B \(bv.shape) do not broadcast")
    }
    let logical = batch + [m, n]
    var stored = logical, cv = View(stored: logical, perm: nil), outCopy: StridedWalk? = nil
    if let q = v.out {
      guard q.count == logical.count, Set(q) == Set(0..<logical.count) else {
        throw c.error("the Transpose folded into the output has perm \(q), not a permutation of \(logical.count) axes")
      }
      stored = q.map { logical[$0] }
      // The stored output's strides seen from the product's logical axes.
      let ss = StridedWalk.contiguousStrides(stored)
      var ls = [Int](repeating: 0, count: q.count)
      for (j, d) in q.enumerated() { ls[d] = ss[j] }
      let r = logical.count
      if (n == 1 || ls[r - 1] == 1) && (m == 1 || ls[r - 2] >= n) {
        cv.strides = ls
      } else {
        let cs = StridedWalk.contiguousStrides(logical)
        outCopy = StridedWalk(dims: stored, strides: q.map { cs[$0] })
      }
    }
    let out = TensorType(.float32, stored)
    guard out.bytes <= c.tensorLimit else { throw c.overLimit("MatMul output \(stored)") }
    try c.setOutputs([out])
    let (ta, lda) = av.matrix, (tb, ldb) = bv.matrix, ldc = cv.matrix.ld
    return StridedMatMulStep(
      shape: BatchedGemm.Shape(m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc, transA: ta, transB: tb),
      aOffsets: av.offsets(batch), bOffsets: bv.offsets(batch), cOffsets: cv.offsets(batch), aCopy: av.copy,
      bCopy: bv.copy, outCopy: outCopy, aCount: a.count, bCount: b.count, cCount: out.count)
  }

  func run(_ c: StepContext) throws(RuntimeError) {
    var a = c.input(0, Float.self), b = c.input(1, Float.self)
    var y = c.output(0, Float.self)
    var scratch = c.scratch?.assumingMemoryBound(to: Float.self)
    func take(_ floats: Int) -> UnsafeMutablePointer<Float> {
      let p = scratch!
      scratch = p + Self.span(floats) / 4
      return p
    }
    if let w = aCopy {
      let s = take(aCount)
      w.copy(from: UnsafeRawPointer(a), to: UnsafeMutableRawPointer(s), elementSize: 4)
      a = UnsafePointer(s)
    }
    if let w = bCopy {
      let s = take(bCount)
      w.copy(from: UnsafeRawPointer(b), to: UnsafeMutableRawPointer(s), elementSize: 4)
      b = UnsafePointer(s)
    }
    let final = y
    if outCopy != nil { y = take(cCount) }
    BatchedGemm.run(
      shape, a: a, aOffsets: aOffsets, b: b, bOffsets: bOffsets, c: y, cOffsets: cOffsets, threads: c.threads)
    if let w = outCopy { w.copy(from: UnsafeRawPointer(y), to: UnsafeMutableRawPointer(final), elementSize: 4) }
  }
}
