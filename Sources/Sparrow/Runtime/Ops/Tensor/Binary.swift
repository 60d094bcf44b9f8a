import Foundation
internal import SparrowKernels

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
    // A Relu fused into an Add (FuseActivation): the only clamp an element-wise node carries.
    var relu = false
    if let clamp = c.node.epilogue.clamp {
      guard kernel == .add, clamp.lowerBound == 0, clamp.upperBound == .infinity else {
        throw c.error("\(op) cannot take a fused clamp \(clamp) (only Add, with a Relu)")
      }
      // As the Relu step would refuse it.
      guard a.dtype == .float32 else { throw c.error("the Relu fused after this Add takes float32, got \(a.dtype)") }
      relu = true
    }
    return BinaryStep(kernel: kernel, a: a.dtype, b: b.dtype, walk: walk, relu: relu)
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
  /// Add only: a Relu fused after the sum, computed as the Relu step does (`max(v, 0)`: NaN stays NaN).
  var relu = false

  /// Same-shape float adds of at least this many elements split over the run's threads.
  static let parallelFrom = 1 << 16

  func run(_ c: StepContext) throws(RuntimeError) {
    switch (a, kernel) {
    case (.float32, .add):
      let x = c.input(0, Float.self), y = c.input(1, Float.self), z = c.output(0, Float.self)
      if walk.isSameShape, walk.count >= Self.parallelFrom, c.threads > 1 {
        return Self.addInParts(x, y, z, count: walk.count, relu: relu, threads: c.threads)
      }
      if relu {
        walk.apply(x, y, z) { max($0 + $1, 0) }
      } else {
        walk.apply(x, y, z) { $0 + $1 }
      }
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

  /// `z = x + y` (then Relu) over `count` elements in one part per thread, on the kernels'
  /// thread back end (a residual join at 2 threads: 0.3 ms of ResNet-18's 15 on one thread).
  private static func addInParts(
    _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ z: UnsafeMutablePointer<Float>, count: Int, relu: Bool,
    threads: Int
  ) {
    var job = AddJob(x: x, y: y, z: z, count: count, parts: min(threads, count / (Self.parallelFrom / 2)), relu: relu)
    withUnsafeMutablePointer(to: &job) { j in
      TileRunner.run(tasks: j.pointee.parts, threads: threads, { plan, part in
        let j = plan!.assumingMemoryBound(to: AddJob.self).pointee
        // Parts start on 16-float boundaries.
        let i0 = (j.count * part / j.parts) & ~15, i1 = part + 1 == j.parts ? j.count : (j.count * (part + 1) / j.parts) & ~15
        let (x, y, z) = (j.x, j.y, j.z)
        if j.relu {
          for i in i0..<i1 { z[i] = max(x[i] + y[i], 0) }
        } else {
          for i in i0..<i1 { z[i] = x[i] + y[i] }
        }
      }, UnsafeMutableRawPointer(j))
    }
  }

  private struct AddJob {
    let x: UnsafePointer<Float>, y: UnsafePointer<Float>
    let z: UnsafeMutablePointer<Float>
    let count: Int, parts: Int
    let relu: Bool
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

  /// Both operands have the output's shape (one contiguous run each).
  var isSameShape: Bool { dims.count == 1 && aStrides == [1] && bStrides == [1] }

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
