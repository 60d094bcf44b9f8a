/// Boolean ops for masks: And, Or, Xor (broadcasting), Not, IsNaN, IsInf (`detect_negative`,
/// `detect_positive`), and Where (three-way broadcasting select of any element type). Bools are
/// one byte, 0 or 1.
enum LogicalOp: OpBuilder {
  static let opTypes = ["And", "Or", "Xor"]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let a = try c.input(0), b = try c.input(1)
    guard a.dtype == .bool, b.dtype == .bool else {
      throw c.error("\(c.node.opType) takes bool inputs, got \(a.dtype) and \(b.dtype)")
    }
    guard let out = broadcastShapes(a.shape, b.shape) else {
      throw c.error("shapes \(a.shape) and \(b.shape) do not broadcast")
    }
    try c.setOutputs([TensorType(.bool, out)])
    let kind: LogicalStep.Kind = c.node.opType == "And" ? .and : (c.node.opType == "Or" ? .or : .xor)
    return LogicalStep(kind: kind, walk: BinaryWalk(a: a.shape, b: b.shape, out: out))
  }
}

struct LogicalStep: Step {
  enum Kind: Sendable { case and, or, xor }
  let kind: Kind
  let walk: BinaryWalk

  func run(_ c: StepContext) throws(RuntimeError) {
    let a = c.input(0, UInt8.self), b = c.input(1, UInt8.self), y = c.output(0, UInt8.self)
    switch kind {
    case .and: walk.apply(a, b, y) { $0 & $1 }
    case .or: walk.apply(a, b, y) { $0 | $1 }
    case .xor: walk.apply(a, b, y) { $0 ^ $1 }
    }
  }
}

/// Not, IsNaN, IsInf: one input, a bool result.
enum PredicateOp: OpBuilder {
  static let opTypes = ["Not", "IsNaN", "IsInf"]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let x = try c.input(0)
    let kind: PredicateStep.Kind
    switch c.node.opType {
    case "Not":
      guard x.dtype == .bool else { throw c.error("Not takes bool, got \(x.dtype)") }
      kind = .not
    case "IsNaN":
      guard x.dtype == .float32 else { throw c.error("IsNaN takes float32, got \(x.dtype)") }
      kind = .isNaN
    default:
      guard x.dtype == .float32 else { throw c.error("IsInf takes float32, got \(x.dtype)") }
      kind = .isInf(negative: try c.int("detect_negative", 1) != 0, positive: try c.int("detect_positive", 1) != 0)
    }
    try c.setOutputs([TensorType(.bool, x.shape)])
    return PredicateStep(kind: kind, count: x.count)
  }
}

struct PredicateStep: Step {
  enum Kind: Sendable {
    case not, isNaN
    case isInf(negative: Bool, positive: Bool)
  }
  let kind: Kind
  let count: Int

  func run(_ c: StepContext) throws(RuntimeError) {
    let y = c.output(0, UInt8.self)
    switch kind {
    case .not:
      let x = c.input(0, UInt8.self)
      for i in 0..<count { y[i] = x[i] == 0 ? 1 : 0 }
    case .isNaN:
      let x = c.input(0, Float.self)
      for i in 0..<count { y[i] = x[i].isNaN ? 1 : 0 }
    case .isInf(let neg, let pos):
      let x = c.input(0, Float.self)
      for i in 0..<count {
        let v = x[i]
        y[i] = (pos && v == .infinity) || (neg && v == -.infinity) ? 1 : 0
      }
    }
  }
}

/// Where(condition, X, Y): X where the bool condition holds, else Y, all three broadcast.
enum WhereOp: OpBuilder {
  static let opTypes = ["Where"]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let cond = try c.input(0), x = try c.input(1), y = try c.input(2)
    guard cond.dtype == .bool else { throw c.error("the condition (input 0) must be bool, got \(cond.dtype)") }
    guard x.dtype == y.dtype else { throw c.error("X and Y must have one type, got \(x.dtype) and \(y.dtype)") }
    guard let xy = broadcastShapes(x.shape, y.shape), let out = broadcastShapes(cond.shape, xy) else {
      throw c.error("shapes \(cond.shape), \(x.shape) and \(y.shape) do not broadcast")
    }
    try c.setOutputs([TensorType(x.dtype, out)])
    return WhereStep(
      dims: out, strides: [cond.shape, x.shape, y.shape].map { BroadcastIndex(from: $0, to: out).strides },
      elementSize: x.dtype.size)
  }
}

struct WhereStep: Step {
  let dims: [Int]
  /// Condition, X and Y strides (elements) over the output's dimensions, 0 where broadcast.
  let strides: [[Int]]
  let elementSize: Int

  func run(_ c: StepContext) throws(RuntimeError) {
    let cond = c.input(0, UInt8.self)
    switch elementSize {
    case 1: select(cond, c.input(1, UInt8.self), c.input(2, UInt8.self), c.output(0, UInt8.self))
    case 2: select(cond, c.input(1, UInt16.self), c.input(2, UInt16.self), c.output(0, UInt16.self))
    case 4: select(cond, c.input(1, UInt32.self), c.input(2, UInt32.self), c.output(0, UInt32.self))
    default: select(cond, c.input(1, UInt64.self), c.input(2, UInt64.self), c.output(0, UInt64.self))
    }
  }

  private func select<T>(_ cond: UnsafePointer<UInt8>, _ x: UnsafePointer<T>, _ y: UnsafePointer<T>, _ out: UnsafeMutablePointer<T>) {
    let count = dims.reduce(1, *)
    guard count > 0 else { return }
    guard let inner = dims.last else {
      out[0] = cond[0] != 0 ? x[0] : y[0]
      return
    }
    let rank = dims.count
    let sc = strides[0], sx = strides[1], sy = strides[2]
    let ic = sc[rank - 1], ix = sx[rank - 1], iy = sy[rank - 1]
    withUnsafeTemporaryAllocation(of: Int.self, capacity: max(rank, 1)) { index in
      index.initialize(repeating: 0)
      var oc = 0, ox = 0, oy = 0
      var o = out
      for _ in 0..<(count / inner) {
        for i in 0..<inner { o[i] = cond[oc + i * ic] != 0 ? x[ox + i * ix] : y[oy + i * iy] }
        o += inner
        var d = rank - 2
        while d >= 0 {
          index[d] += 1
          oc += sc[d]
          ox += sx[d]
          oy += sy[d]
          if index[d] < dims[d] { break }
          oc -= sc[d] * dims[d]
          ox -= sx[d] * dims[d]
          oy -= sy[d] * dims[d]
          index[d] = 0
          d -= 1
        }
      }
    }
  }
}
