/// Einsum with two float32 operands and an explicit output (`"bhid,bhjd->bhij"`, the forms
/// attention exports use): letters in both operands and the output are batch axes, in both but
/// not the output are summed, in one operand and the output are that side's free axes. Each
/// operand is copied into [batch, free, summed] order and multiplied per batch index on OpenBLAS,
/// then the result is laid out in the output's order. Anything else (one or three operands,
/// ellipses, repeated letters, a letter summed on one side only, sizes that differ) is refused
/// with the reason.
enum EinsumOp: OpBuilder {
  static let opTypes = ["Einsum"]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let eq = try c.string("equation", "").filter { !$0.isWhitespace }
    func refuse(_ why: String) -> ModelError { c.error("equation '\(eq)' is not supported: \(why)") }
    guard !eq.contains(".") else { throw refuse("ellipses are not supported") }
    let sides = eq.split(separator: "-", omittingEmptySubsequences: false)
    guard sides.count == 2, sides[1].first == ">" else { throw refuse("an explicit output ('->') is needed") }
    let ins = sides[0].split(separator: ",", omittingEmptySubsequences: false).map { Array($0) }
    let out = Array(sides[1].dropFirst())
    guard ins.count == 2, c.inputs.count == 2 else { throw refuse("only two operands are supported") }
    let a = try c.input(0), b = try c.input(1)
    guard a.dtype == .float32, b.dtype == .float32 else { throw c.error("Einsum takes float32, got \(a.dtype) and \(b.dtype)") }
    guard ins[0].count == a.shape.count, ins[1].count == b.shape.count else {
      throw refuse("subscripts do not match the ranks of \(a.shape) and \(b.shape)")
    }
    for s in ins + [out] where Set(s).count != s.count { throw refuse("a letter repeats within one term") }
    guard out.allSatisfy({ $0.isLetter }), ins.allSatisfy({ $0.allSatisfy(\.isLetter) }) else { throw refuse("subscripts must be letters") }
    var size: [Character: Int] = [:]
    for (s, t) in [(ins[0], a), (ins[1], b)] {
      for (l, d) in zip(s, t.shape) {
        if let e = size[l], e != d { throw refuse("'\(l)' is \(e) in one operand and \(d) in the other") }
        size[l] = d
      }
    }
    let inA = Set(ins[0]), inB = Set(ins[1]), inOut = Set(out)
    guard inOut.isSubset(of: inA.union(inB)) else { throw refuse("an output letter is in no operand") }
    let batch = out.filter { inA.contains($0) && inB.contains($0) }
    let freeA = out.filter { inA.contains($0) && !inB.contains($0) }
    let freeB = out.filter { inB.contains($0) && !inA.contains($0) }
    let summed = ins[0].filter { inB.contains($0) && !inOut.contains($0) }
    guard inA.subtracting(inOut).subtracting(inB).isEmpty, inB.subtracting(inOut).subtracting(inA).isEmpty else {
      throw refuse("a letter summed in one operand only")
    }
    func n(_ ls: [Character]) -> Int { ls.reduce(1) { $0 * size[$1]! } }
    let nb = n(batch), m = n(freeA), k = n(summed), nn = n(freeB)
    /// A walk reading operand `s` (shape `shape`) in the order `order`.
    func walk(_ s: [Character], _ shape: [Int], _ order: [Character]) -> StridedWalk {
      let st = StridedWalk.contiguousStrides(shape)
      return StridedWalk(dims: order.map { size[$0]! }, strides: order.map { st[s.firstIndex(of: $0)!] })
    }
    let outShape = out.map { size[$0]! }
    try c.setOutputs([TensorType(.float32, outShape)])
    // The product's layout [batch, freeA, freeB], read back in the output's order.
    let mid = batch + freeA + freeB
    let midStrides = StridedWalk.contiguousStrides(mid.map { size[$0]! })
    let back = StridedWalk(dims: outShape, strides: out.map { midStrides[mid.firstIndex(of: $0)!] })
    return EinsumStep(
      readA: walk(ins[0], a.shape, batch + freeA + summed), readB: walk(ins[1], b.shape, batch + summed + freeB),
      back: back, shape: BatchedGemm.Shape(m: m, n: nn, k: k, lda: k, ldb: nn, ldc: nn),
      aOffsets: (0..<nb).map { $0 * m * k }, bOffsets: (0..<nb).map { $0 * k * nn }, cOffsets: (0..<nb).map { $0 * m * nn })
  }
}

struct EinsumStep: Step {
  let readA: StridedWalk, readB: StridedWalk, back: StridedWalk
  let shape: BatchedGemm.Shape
  let aOffsets: [Int], bOffsets: [Int], cOffsets: [Int]

  private var spans: (Int, Int, Int) {
    func r(_ n: Int) -> Int { (n * 4 + 63) / 64 * 64 }
    return (r(readA.count), r(readB.count), r(back.count))
  }
  var scratchBytes: Int { spans.0 + spans.1 + spans.2 }

  func run(_ c: StepContext) throws(RuntimeError) {
    guard let s = c.scratch else { throw RuntimeError("Einsum has no scratch") }
    let (sa, sb, _) = spans
    let pa = s, pb = s + sa, pc = s + sa + sb
    readA.copy(from: UnsafeRawPointer(c.input(0, Float.self)), to: pa, elementSize: 4)
    readB.copy(from: UnsafeRawPointer(c.input(1, Float.self)), to: pb, elementSize: 4)
    BatchedGemm.run(
      shape, a: UnsafePointer(pa.assumingMemoryBound(to: Float.self)), aOffsets: aOffsets,
      b: UnsafePointer(pb.assumingMemoryBound(to: Float.self)), bOffsets: bOffsets,
      c: pc.assumingMemoryBound(to: Float.self), cOffsets: cOffsets, threads: c.threads)
    back.copy(from: UnsafeRawPointer(pc), to: UnsafeMutableRawPointer(c.output(0, Float.self)), elementSize: 4)
  }
}
