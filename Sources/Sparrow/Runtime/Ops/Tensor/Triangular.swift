/// Trilu (the upper or lower triangle of the last two axes, diagonal offset k: an optional 0-d
/// int64 input, read at run time) and CumSum (along a constant axis; `exclusive`, `reverse`;
/// float32, int64, int32).
enum TriluOp: OpBuilder {
  static let opTypes = ["Trilu"]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let x = try c.input(0)
    guard x.shape.count >= 2 else { throw c.error("Trilu needs rank 2 or more, got \(x.shape)") }
    if c.hasInput(1) {
      let k = try c.input(1)
      guard k.dtype == .int64, k.count == 1 else { throw c.error("k (input 1) must be one int64, got \(k)") }
    }
    try c.setOutputs([x])
    let r = x.shape.count
    return TriluStep(
      matrices: x.shape.dropLast(2).reduce(1, *), rows: x.shape[r - 2], cols: x.shape[r - 1],
      upper: try c.int("upper", 1) != 0, elementSize: x.dtype.size, hasK: c.hasInput(1))
  }
}

struct TriluStep: Step {
  let matrices: Int, rows: Int, cols: Int
  let upper: Bool
  let elementSize: Int
  let hasK: Bool

  func run(_ c: StepContext) throws(RuntimeError) {
    let x = UnsafeRawPointer(c.input(0, UInt8.self)), y = UnsafeMutableRawPointer(c.output(0, UInt8.self))
    let k64 = hasK ? c.input(1, Int64.self)[0] : 0
    let k = Int(clamping: Swift.max(Swift.min(k64, Int64(cols + rows)), -Int64(cols + rows)))
    let size = elementSize, rowBytes = cols * size
    y.copyMemory(from: x, byteCount: matrices * rows * rowBytes)
    for m in 0..<matrices {
      for i in 0..<rows {
        let row = y + (m * rows + i) * rowBytes
        // Upper keeps j >= i + k; lower keeps j <= i + k.
        let (lo, hi) = upper ? (0, Swift.min(Swift.max(i + k, 0), cols)) : (Swift.min(Swift.max(i + k + 1, 0), cols), cols)
        if hi > lo { (row + lo * size).initializeMemory(as: UInt8.self, repeating: 0, count: (hi - lo) * size) }
      }
    }
  }
}

enum CumSumOp: OpBuilder {
  static let opTypes = ["CumSum"]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let x = try c.input(0)
    guard [.float32, .int64, .int32].contains(x.dtype) else { throw c.error("CumSum takes float32, int64 or int32, got \(x.dtype)") }
    guard let a = c.constant(1), a.count == 1, a.dtype == .int64 || a.dtype == .int32 else {
      throw c.error("axis (input 1) must be one constant int64 or int32")
    }
    let rank = x.shape.count
    guard rank > 0 else { throw c.error("CumSum of a 0-d tensor") }
    let axis = try c.axis(Int(clamping: a.int64s[0]), rank: rank)
    try c.setOutputs([x])
    return CumSumStep(
      outer: x.shape[..<axis].reduce(1, *), n: x.shape[axis], inner: x.shape[(axis + 1)...].reduce(1, *),
      exclusive: try c.int("exclusive", 0) != 0, reverse: try c.int("reverse", 0) != 0, dtype: x.dtype)
  }
}

struct CumSumStep: Step {
  let outer: Int, n: Int, inner: Int
  let exclusive: Bool, reverse: Bool
  let dtype: DType

  func run(_ c: StepContext) throws(RuntimeError) {
    switch dtype {
    case .float32: scan(c.input(0, Float.self), c.output(0, Float.self)) { $0 + $1 }
    case .int64: scan(c.input(0, Int64.self), c.output(0, Int64.self)) { $0 &+ $1 }
    default: scan(c.input(0, Int32.self), c.output(0, Int32.self)) { $0 &+ $1 }
    }
  }

  private func scan<T: Numeric>(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, _ add: (T, T) -> T) {
    for o in 0..<outer {
      for j in 0..<inner {
        let base = o * n * inner + j
        var acc: T = 0
        for s in 0..<n {
          let i = base + (reverse ? n - 1 - s : s) * inner
          if exclusive {
            y[i] = acc
            acc = add(acc, x[i])
          } else {
            acc = add(acc, x[i])
            y[i] = acc
          }
        }
      }
    }
  }
}
