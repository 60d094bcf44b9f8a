import Foundation

/// Element-wise float32 functions of one input: activations and Sqrt/Erf.
enum UnaryOp: OpBuilder {
  static let opTypes = ["Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Sqrt", "Erf", "Tanh", "Exp", "Neg", "Abs"]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let x = try c.input(0)
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
    default: throw c.error("is not an element-wise unary op")
    }
    try c.setOutputs([x])
    return UnaryStep(kind: kind, count: x.count)
  }
}

struct UnaryStep: Step {
  enum Kind: Sendable {
    case relu, sigmoid, hardSwish, sqrt, erf, tanh, exp, neg, abs
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
    }
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
