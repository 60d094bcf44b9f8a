import Foundation

/// Add, Sub, Mul, Div, Pow with numpy broadcasting. float32 throughout; Add/Sub/Mul/Div also on
/// int64 and int32, as shape sub-graphs compute on int64 (integer arithmetic wraps, and division by
/// zero gives 0 rather than trapping). Pow takes a float32 base and a float32 or integer exponent.
enum BinaryOp: OpBuilder {
  static let opTypes = ["Add", "Sub", "Mul", "Div", "Pow"]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let a = try c.input(0), b = try c.input(1)
    guard let out = broadcastShapes(a.shape, b.shape) else {
      throw c.error("shapes \(a.shape) and \(b.shape) do not broadcast")
    }
    try c.setOutputs([TensorType(a.dtype, out)])
    let walk = BinaryWalk(a: a.shape, b: b.shape, out: out)
    let op = c.node.opType
    let kernel: BinaryStep.Kernel
    switch op {
    case "Add": kernel = .add
    case "Sub": kernel = .sub
    case "Mul": kernel = .mul
    case "Div": kernel = .div
    default: kernel = .pow
    }
    if kernel == .pow {
      guard a.dtype == .float32 else { throw c.error("Pow takes a float32 base, got \(a.dtype)") }
      guard [.float32, .int64, .int32].contains(b.dtype) else {
        throw c.error("Pow takes a float32 or integer exponent, got \(b.dtype)")
      }
    } else {
      guard a.dtype == b.dtype else { throw c.error("\(op) needs equal input types, got \(a.dtype) and \(b.dtype)") }
      guard [.float32, .int64, .int32].contains(a.dtype) else {
        throw c.error("\(op) takes float32, int64 or int32, got \(a.dtype)")
      }
    }
    return BinaryStep(kernel: kernel, a: a.dtype, b: b.dtype, walk: walk)
  }
}

/// The element-wise function is chosen by one switch per run; each case instantiates the
/// `@inline(__always)` walk with concrete types and a literal closure, so every loop is
/// specialised (a generic step type would run its unspecialised body through `any Step`).
struct BinaryStep: Step {
  enum Kernel: Sendable { case add, sub, mul, div, pow }
  let kernel: Kernel
  let a: DType, b: DType
  let walk: BinaryWalk

  func run(_ c: StepContext) throws(RuntimeError) {
    switch (a, kernel) {
    case (.float32, .add): walk.apply(c.input(0, Float.self), c.input(1, Float.self), c.output(0, Float.self)) { $0 + $1 }
    case (.float32, .sub): walk.apply(c.input(0, Float.self), c.input(1, Float.self), c.output(0, Float.self)) { $0 - $1 }
    case (.float32, .mul): walk.apply(c.input(0, Float.self), c.input(1, Float.self), c.output(0, Float.self)) { $0 * $1 }
    case (.float32, .div): walk.apply(c.input(0, Float.self), c.input(1, Float.self), c.output(0, Float.self)) { $0 / $1 }
    case (.float32, .pow):
      switch b {
      case .int64: walk.apply(c.input(0, Float.self), c.input(1, Int64.self), c.output(0, Float.self)) { power($0, Float($1)) }
      case .int32: walk.apply(c.input(0, Float.self), c.input(1, Int32.self), c.output(0, Float.self)) { power($0, Float($1)) }
      default: walk.apply(c.input(0, Float.self), c.input(1, Float.self), c.output(0, Float.self)) { power($0, $1) }
      }
    case (.int64, _): integer(c, Int64.self)
    case (.int32, _): integer(c, Int32.self)
    default: throw RuntimeError("\(kernel) on \(a) is not supported")
    }
  }

  @inline(__always)
  private func integer<T: FixedWidthInteger>(_ c: StepContext, _: T.Type) {
    let x = c.input(0, T.self), y = c.input(1, T.self), z = c.output(0, T.self)
    switch kernel {
    case .add: walk.apply(x, y, z) { $0 &+ $1 }
    case .sub: walk.apply(x, y, z) { $0 &- $1 }
    case .mul: walk.apply(x, y, z) { $0 &* $1 }
    case .div, .pow:
      // Reports rather than traps on b == 0 and on T.min / -1; both give 0 (ONNX leaves them
      // undefined). Integer Pow is refused at build time.
      walk.apply(x, y, z) { a, b in
        let (q, overflow) = a.dividedReportingOverflow(by: b)
        return overflow ? 0 : q
      }
    }
  }
}

@inline(__always)
private func power(_ a: Float, _ b: Float) -> Float { b == 2 ? a * a : Foundation.pow(a, b) }

/// The broadcast of two operands onto the output, with size-1 dimensions dropped and adjacent
/// dimensions merged where both operands allow, so the inner loop is long and usually one of
/// same-shape, scalar-right (per-channel) or scalar-left.
struct BinaryWalk: Sendable {
  let dims: [Int]
  let aStrides: [Int]
  let bStrides: [Int]
  let count: Int

  init(dims: [Int], aStrides: [Int], bStrides: [Int], count: Int) {
    self.dims = dims
    self.aStrides = aStrides
    self.bStrides = bStrides
    self.count = count
  }

  init(a: [Int], b: [Int], out: [Int]) {
    let sa = BroadcastIndex(from: a, to: out).strides, sb = BroadcastIndex(from: b, to: out).strides
    var d: [Int] = [], da: [Int] = [], db: [Int] = []
    for i in out.indices where out[i] != 1 {
      let n = out[i]
      if let last = d.last, da[da.count - 1] == sa[i] * n, db[db.count - 1] == sb[i] * n {
        d[d.count - 1] = last * n
        da[da.count - 1] = sa[i]
        db[db.count - 1] = sb[i]
      } else {
        d.append(n)
        da.append(sa[i])
        db.append(sb[i])
      }
    }
    self.init(dims: d, aStrides: da, bStrides: db, count: out.reduce(1, *))
  }
}

extension BinaryWalk {
  /// `y = f(a, b)` over the walk.
  @inline(__always)
  func apply<A, B, Y>(_ a: UnsafePointer<A>, _ b: UnsafePointer<B>, _ y: UnsafeMutablePointer<Y>, _ f: (A, B) -> Y) {
    let w = self
    guard w.count > 0 else { return }
    guard let inner = w.dims.last else {
      y[0] = f(a[0], b[0])
      return
    }
    let ia = w.aStrides[w.dims.count - 1], ib = w.bStrides[w.dims.count - 1]
    let outer = w.count / inner
    let rank = w.dims.count
    // The odometer lives on the stack: no allocation per run.
    withUnsafeTemporaryAllocation(of: Int.self, capacity: max(rank - 1, 1)) { index in
      index.initialize(repeating: 0)
      var oa = 0, ob = 0
      var out = y
      for _ in 0..<outer {
        let pa = a + oa, pb = b + ob
        if ia == 1 && ib == 1 {
          for i in 0..<inner { out[i] = f(pa[i], pb[i]) }
        } else if ia == 1 && ib == 0 {
          let v = pb[0]
          for i in 0..<inner { out[i] = f(pa[i], v) }
        } else if ia == 0 && ib == 1 {
          let v = pa[0]
          for i in 0..<inner { out[i] = f(v, pb[i]) }
        } else {
          for i in 0..<inner { out[i] = f(pa[i * ia], pb[i * ib]) }
        }
        out += inner
        var d = rank - 2
        while d >= 0 {
          index[d] += 1
          oa += w.aStrides[d]
          ob += w.bStrides[d]
          if index[d] < w.dims[d] { break }
          oa -= w.aStrides[d] * w.dims[d]
          ob -= w.bStrides[d] * w.dims[d]
          index[d] = 0
          d -= 1
        }
      }
    }
  }
}
