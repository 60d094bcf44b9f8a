import Foundation

/// Softmax (and LogSoftmax). Before opset 13 the input is coerced to 2-D at `axis` (default 1)
/// and normalised over the whole flattened trailing part; from 13 it is normalised along `axis`
/// (default -1) alone.
enum SoftmaxOp: OpBuilder {
  static let opTypes = ["Softmax", "LogSoftmax"]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let x = try c.input(0)
    guard x.dtype == .float32 else { throw c.error("\(c.node.opType) takes float32, got \(x.dtype)") }
    let rank = x.shape.count
    let legacy = c.opset < 13
    let a = try c.int("axis", legacy ? 1 : -1)
    let outer: Int, n: Int, inner: Int
    if rank == 0 {
      (outer, n, inner) = (1, 1, 1)
    } else if legacy {
      // The 2-D coercion allows axis == rank (everything in one row of one element each).
      let r = a < 0 ? a + rank : a
      guard r >= 0, r <= rank else { throw c.error("axis \(a) is out of range for rank \(rank)") }
      (outer, n, inner) = (x.shape[..<r].reduce(1, *), x.shape[r...].reduce(1, *), 1)
    } else {
      let r = try c.axis(a, rank: rank)
      (outer, n, inner) = (x.shape[..<r].reduce(1, *), x.shape[r], x.shape[(r + 1)...].reduce(1, *))
    }
    try c.setOutputs([x])
    return SoftmaxStep(outer: outer, n: n, inner: inner, log: c.node.opType == "LogSoftmax")
  }
}

struct SoftmaxStep: Step {
  let outer: Int, n: Int, inner: Int
  let log: Bool

  func run(_ c: StepContext) throws(RuntimeError) {
    let x = c.input(0, Float.self), y = c.output(0, Float.self)
    guard n > 0 else { return }
    for o in 0..<outer {
      for j in 0..<inner {
        let base = o * n * inner + j
        var m = -Float.infinity
        for i in 0..<n { m = max(m, x[base + i * inner]) }
        var sum: Float = 0
        for i in 0..<n {
          let e = Foundation.exp(x[base + i * inner] - m)
          y[base + i * inner] = e
          sum += e
        }
        if log {
          let l = Foundation.log(sum) + m
          for i in 0..<n { y[base + i * inner] = x[base + i * inner] - l }
        } else {
          let s = 1 / sum
          for i in 0..<n { y[base + i * inner] *= s }
        }
      }
    }
  }
}
