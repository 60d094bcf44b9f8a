import Foundation

/// Element-wise float32 functions of one input: activations, Sqrt/Erf/Log..., and Gelu (opset 20,
/// `approximate` "none" or "tanh"; also what FuseGelu writes for the Erf and Tanh patterns).
/// Neg and Abs also take int64 and int32.
enum UnaryOp: OpBuilder {
  static let opTypes = [
    "Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Sqrt", "Erf", "Tanh", "Exp", "Neg", "Abs", "Log",
    "Reciprocal", "Floor", "Ceil", "Gelu", "Softplus", "Sign",
  ]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let x = try c.input(0)
    if ["Neg", "Abs"].contains(c.node.opType), x.dtype == .int64 || x.dtype == .int32 {
      try c.setOutputs([x])
      return IntegerUnaryStep(negate: c.node.opType == "Neg", wide: x.dtype == .int64, count: x.count)
    }
    guard x.dtype == .float32 else { throw c.error("\(c.node.opType) takes float32, got \(x.dtype)") }
    let kind: UnaryStep.Kind
    switch c.node.opType {
    case "Relu": kind = .relu
    case "LeakyRelu": kind = .leakyRelu(try c.float("alpha", 0.01))
    case "Sigmoid": kind = .sigmoid
    case "HardSigmoid": kind = .hardSigmoid(alpha: try c.float("alpha", 0.2), beta: try c.float("beta", 0.5))
    case "HardSwish":
      // Written by the FuseHardSwish pass: x·Clip(x+3, 0, 6)/6 in that order, then ·a + c.
      if let a = c.node.epilogue.affine {
        kind = .hardSwishDecomposed(scale: a.scale, shift: a.shift)
      } else {
        kind = .hardSwish
      }
    case "Sqrt": kind = .sqrt
    case "Erf": kind = .erf
    case "Tanh": kind = .tanh
    case "Exp": kind = .exp
    case "Neg": kind = .neg
    case "Abs": kind = .abs
    case "Log": kind = .log
    case "Reciprocal": kind = .reciprocal
    case "Floor": kind = .floor
    case "Ceil": kind = .ceil
    case "Softplus": kind = .softplus
    case "Sign": kind = .sign
    case "Gelu":
      switch try c.string("approximate", "none") {
      case "none": kind = .gelu
      case "tanh": kind = .geluTanh
      case let a: throw c.error("attribute 'approximate' must be \"none\" or \"tanh\", got \"\(a)\"")
      }
    default: throw c.error("is not an element-wise unary op")
    }
    try c.setOutputs([x])
    return UnaryStep(kind: kind, count: x.count)
  }
}

struct UnaryStep: Step {
  enum Kind: Sendable {
    case relu, sigmoid, hardSwish, sqrt, erf, tanh, exp, neg, abs, log, reciprocal, floor, ceil, softplus, sign
    case gelu, geluTanh
    case leakyRelu(Float)
    case hardSigmoid(alpha: Float, beta: Float)
    case hardSwishDecomposed(scale: Float, shift: Float)
  }
  let kind: Kind
  let count: Int

  func run(_ c: StepContext) throws(RuntimeError) {
    let x = c.input(0, Float.self), y = c.output(0, Float.self)
    let n = count
    switch kind {
    case .relu: for i in 0..<n { y[i] = max(x[i], 0) }
    case .leakyRelu(let a): for i in 0..<n { let v = x[i]; y[i] = v >= 0 ? v : a * v }
    case .sigmoid:
      for i in 0..<n {
        // exp of a non-positive argument only, so large |x| neither overflows nor loses 1 - tiny.
        let v = x[i]
        let e = Foundation.exp(-Swift.abs(v))
        y[i] = v >= 0 ? 1 / (1 + e) : e / (1 + e)
      }
    case .hardSigmoid(let a, let b): for i in 0..<n { y[i] = min(max(a * x[i] + b, 0), 1) }
    case .hardSwish: for i in 0..<n { let v = x[i]; y[i] = v * min(max(v * (1.0 / 6) + 0.5, 0), 1) }
    case .hardSwishDecomposed(let a, let b):
      for i in 0..<n { let v = x[i]; y[i] = v * min(max(v + 3, 0), 6) / 6 * a + b }
    case .sqrt: for i in 0..<n { y[i] = x[i].squareRoot() }
    case .erf: for i in 0..<n { y[i] = Foundation.erf(x[i]) }
    case .tanh: for i in 0..<n { y[i] = Foundation.tanh(x[i]) }
    case .exp: for i in 0..<n { y[i] = Foundation.exp(x[i]) }
    case .neg: for i in 0..<n { y[i] = -x[i] }
    case .abs: for i in 0..<n { y[i] = Swift.abs(x[i]) }
    case .log: for i in 0..<n { y[i] = Foundation.log(x[i]) }
    case .reciprocal: for i in 0..<n { y[i] = 1 / x[i] }
    case .floor: for i in 0..<n { y[i] = x[i].rounded(.down) }
    case .ceil: for i in 0..<n { y[i] = x[i].rounded(.up) }
    case .sign: for i in 0..<n { let v = x[i]; y[i] = v > 0 ? 1 : (v < 0 ? -1 : v) }
    case .softplus:
      // log(1 + e^x) without overflow: x + log(1 + e^-x) for positive x.
      for i in 0..<n { let v = x[i]; y[i] = v > 0 ? v + Foundation.log1p(Foundation.exp(-v)) : Foundation.log1p(Foundation.exp(v)) }
    case .gelu: RowKernels.gelu(.exact, count: n, x: x, y: y, threads: c.threads)
    case .geluTanh: RowKernels.gelu(.tanh, count: n, x: x, y: y, threads: c.threads)
    }
  }
}

/// Neg and Abs on int64/int32 (wrapping: -T.min is T.min, as numpy).
struct IntegerUnaryStep: Step {
  let negate: Bool
  let wide: Bool
  let count: Int

  func run(_ c: StepContext) throws(RuntimeError) {
    if wide { apply(c.input(0, Int64.self), c.output(0, Int64.self)) } else { apply(c.input(0, Int32.self), c.output(0, Int32.self)) }
  }

  private func apply<T: FixedWidthInteger & SignedInteger>(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>) {
    for i in 0..<count { y[i] = negate || x[i] < 0 ? 0 &- x[i] : x[i] }
  }
}

/// Clip: min and max are attributes before opset 11, optional inputs from 11 (either may be
/// absent; constants are read at plan time, run-time 0-d tensors at each run).
enum ClipOp: OpBuilder {
  static let opTypes = ["Clip"]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let x = try c.input(0)
    guard x.dtype == .float32 else { throw c.error("Clip takes float32, got \(x.dtype)") }
    try c.setOutputs([x])
    if c.opset < 11 {
      let lo = try c.float("min", -.infinity), hi = try c.float("max", .infinity)
      return ClipStep(count: x.count, lo: lo, hi: hi, runtimeLo: false, runtimeHi: false)
    }
    func bound(_ i: Int, _ name: String, _ def: Float) throws(ModelError) -> (Float, Bool) {
      guard c.hasInput(i) else { return (def, false) }
      let t = try c.input(i)
      guard t.dtype == .float32, t.count == 1 else { throw c.error("Clip's \(name) (input \(i)) must be one float32, got \(t)") }
      if let v = c.constant(i) { return (v.floats[0], false) }
      return (def, true)
    }
    let (lo, rlo) = try bound(1, "min", -.infinity)
    let (hi, rhi) = try bound(2, "max", .infinity)
    return ClipStep(count: x.count, lo: lo, hi: hi, runtimeLo: rlo, runtimeHi: rhi)
  }
}

struct ClipStep: Step {
  let count: Int
  let lo: Float, hi: Float
  let runtimeLo: Bool, runtimeHi: Bool

  func run(_ c: StepContext) throws(RuntimeError) {
    let x = c.input(0, Float.self), y = c.output(0, Float.self)
    let lo = runtimeLo ? c.input(1, Float.self)[0] : self.lo
    let hi = runtimeHi ? c.input(2, Float.self)[0] : self.hi
    // ONNX (and ORT) apply min then max: with lo > hi every element becomes hi.
    for i in 0..<count { y[i] = min(max(x[i], lo), hi) }
  }
}
