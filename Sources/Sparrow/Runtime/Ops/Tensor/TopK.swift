/// TopK over float32 along one axis: the k largest (or smallest) values and their int64
/// indices, sorted; equal values keep the lower index first (ONNX, opset 11 on). K is a
/// constant (an attribute before opset 10, a one-element int64 input after) — a learned gate's
/// budget. NaN counts as larger than every number, as in ONNX Runtime.
enum TopKOp: OpBuilder {
  static let opTypes = ["TopK"]
  static let shapeInputs = [1]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let x = try c.input(0)
    guard x.dtype == .float32 else { throw c.error("TopK takes float32, got \(x.dtype)") }
    let k: Int
    if c.opset < 10 {
      k = try c.int("k", -1)
    } else {
      let ks = try c.constantInts(1, "K")
      guard ks.count == 1 else { throw c.error("K must be one integer, got \(ks.count)") }
      k = ks[0]
    }
    guard !x.shape.isEmpty else { throw c.error("TopK needs an input of rank at least 1") }
    let axis = try c.axis(try c.int("axis", -1), rank: x.shape.count)
    let len = x.shape[axis]
    guard k >= 0, k <= len else { throw c.error("K = \(k) is outside 0...\(len) (the axis' length)") }
    var out = x.shape
    out[axis] = k
    try c.setOutputs([TensorType(.float32, out), TensorType(.int64, out)])
    let inner = x.shape[(axis + 1)...].reduce(1, *)
    let outer = x.shape[..<axis].reduce(1, *)
    return TopKStep(
      outer: outer, length: len, inner: inner, k: k, largest: try c.int("largest", 1) != 0,
      hasIndices: c.node.outputs.count > 1 && !c.node.outputs[1].isEmpty)
  }
}

struct TopKStep: Step {
  let outer: Int, length: Int, inner: Int, k: Int
  let largest: Bool
  let hasIndices: Bool
  var scratchBytes: Int { max(k, 1) * MemoryLayout<Int>.stride }

  func run(_ c: StepContext) throws(RuntimeError) {
    guard let scratch = c.scratch, k > 0 else { return }
    let x = c.input(0, Float.self), values = c.output(0, Float.self)
    let indices: UnsafeMutablePointer<Int64>? = hasIndices ? c.output(1, Int64.self) : nil
    let best = scratch.assumingMemoryBound(to: Int.self)
    // `a` goes before `b`: larger (smaller) first, NaN first, then the lower index.
    @inline(__always) func before(_ a: Float, _ ia: Int, _ b: Float, _ ib: Int) -> Bool {
      if a.isNaN || b.isNaN { return a.isNaN && (!b.isNaN || ia < ib) }
      if a != b { return largest ? a > b : a < b }
      return ia < ib
    }
    for o in 0..<outer {
      for i in 0..<inner {
        let base = o * length * inner + i
        // Insertion into a sorted list of k: O(length * k), small for the gates' channel counts.
        var count = 0
        for j in 0..<length {
          let v = x[base + j * inner]
          if count == k, !before(v, j, x[base + best[k - 1] * inner], best[k - 1]) { continue }
          var p = min(count, k - 1)
          while p > 0, before(v, j, x[base + best[p - 1] * inner], best[p - 1]) {
            best[p] = best[p - 1]
            p -= 1
          }
          best[p] = j
          if count < k { count += 1 }
        }
        let outBase = o * k * inner + i
        for r in 0..<k {
          values[outBase + r * inner] = x[base + best[r] * inner]
          indices?[outBase + r * inner] = Int64(best[r])
        }
      }
    }
  }
}
