import Foundation

/// ReduceMean, ReduceSum, ReduceMax, ReduceMin, ReduceProd, ReduceL1, ReduceL2, ReduceSumSquare,
/// ReduceLogSumExp over float32 (LogSumExp as log Σ exp, without subtracting the maximum). `axes` is an attribute before
/// opset 18 (ReduceSum: before 13) and an optional constant input after; no axes reduces
/// everything unless `noop_with_empty_axes` is set.
enum ReduceOp: OpBuilder {
  static let opTypes = [
    "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceSumSquare",
    "ReduceLogSumExp",
  ]
  static let shapeInputs = [1]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let x = try c.input(0)
    guard x.dtype == .float32 else { throw c.error("\(c.node.opType) takes float32, got \(x.dtype)") }
    let rank = x.shape.count
    let axesAsInput = c.opset >= (c.node.opType == "ReduceSum" ? 13 : 18)
    var axes: [Int]
    if axesAsInput {
      axes = c.hasInput(1) ? try c.constantInts(1, "axes") : []
    } else {
      axes = try c.ints("axes") ?? []
    }
    let keep = try c.int("keepdims", 1) != 0
    let noop = try c.int("noop_with_empty_axes", 0) != 0
    if axes.isEmpty {
      if noop {
        try c.setOutputs([x])
        return CopyStep()
      }
      axes = Array(0..<rank)
    }
    let reduced = Set(try c.normalisedAxes(axes, rank: rank))
    var outShape: [Int] = []
    for (i, d) in x.shape.enumerated() {
      if !reduced.contains(i) { outShape.append(d) } else if keep { outShape.append(1) }
    }
    try c.setOutputs([TensorType(.float32, outShape)])
    let group = reduced.reduce(1) { $0 * x.shape[$1] }
    guard group > 0 || !["ReduceMean", "ReduceMax", "ReduceMin"].contains(c.node.opType) else {
      throw c.error("\(c.node.opType) over an empty axis has no value")
    }
    // The input walked in row-major order; `strides` map each input dimension to the output
    // (0 on reduced dimensions).
    var outStrides = [Int](repeating: 0, count: rank)
    var acc = 1
    for i in stride(from: rank - 1, through: 0, by: -1) where !reduced.contains(i) {
      outStrides[i] = acc
      acc *= x.shape[i]
    }
    let kind: ReduceStep.Kind
    switch c.node.opType {
    case "ReduceMean": kind = .mean
    case "ReduceSum": kind = .sum
    case "ReduceMax": kind = .max
    case "ReduceMin": kind = .min
    case "ReduceProd": kind = .prod
    case "ReduceL1": kind = .l1
    case "ReduceL2": kind = .l2
    case "ReduceSumSquare": kind = .sumSquare
    default: kind = .logSumExp
    }
    return ReduceStep(
      kind: kind, walk: BinaryWalk(inputShape: x.shape, outStrides: outStrides), outCount: outShape.reduce(1, *),
      group: group)
  }
}

extension BinaryWalk {
  /// A walk over the input (operand a, contiguous) with the output (operand b) broadcast back.
  init(inputShape: [Int], outStrides: [Int]) {
    var d: [Int] = [], da: [Int] = [], db: [Int] = []
    let sa = StridedWalk.contiguousStrides(inputShape)
    for i in inputShape.indices where inputShape[i] != 1 {
      let n = inputShape[i]
      if let last = d.last, da[da.count - 1] == sa[i] * n, db[db.count - 1] == outStrides[i] * n {
        d[d.count - 1] = last * n
        da[da.count - 1] = sa[i]
        db[db.count - 1] = outStrides[i]
      } else {
        d.append(n)
        da.append(sa[i])
        db.append(outStrides[i])
      }
    }
    self.init(dims: d, aStrides: da, bStrides: db, count: inputShape.reduce(1, *))
  }
}

struct ReduceStep: Step {
  enum Kind: Sendable { case mean, sum, max, min, prod, l1, l2, sumSquare, logSumExp }
  let kind: Kind
  let walk: BinaryWalk
  let outCount: Int
  let group: Int

  func run(_ c: StepContext) throws(RuntimeError) {
    let x = c.input(0, Float.self), y = c.output(0, Float.self)
    switch kind {
    case .mean, .sum: accumulate(x, y, start: 0) { $0 + $1 }
    case .max: accumulate(x, y, start: -.infinity) { Swift.max($0, $1) }
    case .min: accumulate(x, y, start: .infinity) { Swift.min($0, $1) }
    case .prod: accumulate(x, y, start: 1) { $0 * $1 }
    case .l1: accumulate(x, y, start: 0) { $0 + Swift.abs($1) }
    case .l2, .sumSquare: accumulate(x, y, start: 0) { $0 + $1 * $1 }
    case .logSumExp: accumulate(x, y, start: 0) { $0 + Foundation.exp($1) }
    }
    if kind == .l2 { for i in 0..<outCount { y[i] = y[i].squareRoot() } }
    if kind == .logSumExp { for i in 0..<outCount { y[i] = Foundation.log(y[i]) } }
    if kind == .mean {
      let s = 1 / Float(group)
      for i in 0..<outCount { y[i] *= s }
    }
  }

  @inline(__always)
  private func accumulate(
    _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, start: Float, _ f: (Float, Float) -> Float
  ) {
    y.update(repeating: start, count: outCount)
    let w = walk
    guard w.count > 0 else { return }
    guard let inner = w.dims.last else {
      y[0] = f(y[0], x[0])
      return
    }
    let ib = w.bStrides[w.dims.count - 1]
    let outer = w.count / inner
    let rank = w.dims.count
    withUnsafeTemporaryAllocation(of: Int.self, capacity: max(rank - 1, 1)) { index in
      index.initialize(repeating: 0)
      var ob = 0
      var px = x
      for _ in 0..<outer {
        let py = y + ob
        if ib == 0 {
          var a = py[0]
          for i in 0..<inner { a = f(a, px[i]) }
          py[0] = a
        } else {
          for i in 0..<inner { py[i * ib] = f(py[i * ib], px[i]) }
        }
        px += inner
        var d = rank - 2
        while d >= 0 {
          index[d] += 1
          ob += w.bStrides[d]
          if index[d] < w.dims[d] { break }
          ob -= w.bStrides[d] * w.dims[d]
          index[d] = 0
          d -= 1
        }
      }
    }
  }
}
