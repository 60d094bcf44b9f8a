import Foundation

/// Min, Max, Sum, Mean over one or more inputs of one type (float32, int64 or int32), all
/// broadcast together; and Mod (two inputs; `fmod` 0: the result takes the divisor's sign, as
/// Python's %, integers only; `fmod` 1: the dividend's, as C's fmod). Integer Mod by zero gives 0.
enum VariadicOp: OpBuilder {
  static let opTypes = ["Min", "Max", "Sum", "Mean", "Mod"]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let op = c.node.opType
    var shapes: [[Int]] = []
    let first = try c.input(0)
    for i in c.inputs.indices {
      let t = try c.input(i)
      guard t.dtype == first.dtype else { throw c.error("input \(i) is \(t.dtype), input 0 is \(first.dtype)") }
      shapes.append(t.shape)
    }
    guard [.float32, .int64, .int32].contains(first.dtype), op != "Mean" || first.dtype == .float32 else {
      throw c.error("\(op) takes float32, int64 or int32 (Mean float32 only), got \(first.dtype)")
    }
    var out = shapes[0]
    for s in shapes.dropFirst() {
      guard let b = broadcastShapes(out, s) else { throw c.error("shapes \(shapes) do not broadcast") }
      out = b
    }
    let kind: VariadicStep.Kind
    switch op {
    case "Min": kind = .min
    case "Max": kind = .max
    case "Sum": kind = .sum
    case "Mean": kind = .mean
    default:
      guard shapes.count == 2 else { throw c.error("Mod takes two inputs, got \(shapes.count)") }
      let f = try c.int("fmod", 0) != 0
      guard f || first.dtype != .float32 else { throw c.error("Mod of float32 needs fmod = 1") }
      kind = f ? .fmod : .mod
    }
    try c.setOutputs([TensorType(first.dtype, out)])
    return VariadicStep(
      kind: kind, dtype: first.dtype, first: StridedWalk(dims: out, strides: BroadcastIndex(from: shapes[0], to: out).strides),
      rest: shapes.dropFirst().map { BinaryWalk(a: out, b: $0, out: out) }, count: out.reduce(1, *))
  }
}

struct VariadicStep: Step {
  enum Kind: Sendable { case min, max, sum, mean, mod, fmod }
  let kind: Kind
  let dtype: DType
  /// Input 0 broadcast into the output.
  let first: StridedWalk
  /// Each further input combined with the output in place.
  let rest: [BinaryWalk]
  let count: Int

  func run(_ c: StepContext) throws(RuntimeError) {
    first.copy(from: UnsafeRawPointer(c.input(0, UInt8.self)), to: UnsafeMutableRawPointer(c.output(0, UInt8.self)),
      elementSize: dtype.size)
    switch dtype {
    case .float32:
      let y = c.output(0, Float.self)
      for (i, w) in rest.enumerated() {
        let b = c.input(i + 1, Float.self)
        switch kind {
        // NaN propagates, as in ONNX Runtime.
        case .min: w.apply(UnsafePointer(y), b, y) { $0.isNaN || $1.isNaN ? .nan : Swift.min($0, $1) }
        case .max: w.apply(UnsafePointer(y), b, y) { $0.isNaN || $1.isNaN ? .nan : Swift.max($0, $1) }
        case .sum, .mean: w.apply(UnsafePointer(y), b, y) { $0 + $1 }
        case .mod, .fmod: w.apply(UnsafePointer(y), b, y) { Foundation.fmod($0, $1) }
        }
      }
      if kind == .mean {
        let s = 1 / Float(rest.count + 1)
        for i in 0..<count { y[i] *= s }
      }
    case .int64: integer(c, Int64.self)
    default: integer(c, Int32.self)
    }
  }

  private func integer<T: FixedWidthInteger & SignedInteger>(_ c: StepContext, _: T.Type) {
    let y = c.output(0, T.self)
    for (i, w) in rest.enumerated() {
      let b = c.input(i + 1, T.self)
      switch kind {
      case .min: w.apply(UnsafePointer(y), b, y) { Swift.min($0, $1) }
      case .max: w.apply(UnsafePointer(y), b, y) { Swift.max($0, $1) }
      case .sum, .mean: w.apply(UnsafePointer(y), b, y) { $0 &+ $1 }
      case .fmod:
        w.apply(UnsafePointer(y), b, y) { a, b in
          let (r, o) = a.remainderReportingOverflow(dividingBy: b)
          return o ? 0 : r
        }
      case .mod:
        w.apply(UnsafePointer(y), b, y) { a, b in
          let (r, o) = a.remainderReportingOverflow(dividingBy: b)
          if o { return 0 }
          return r != 0 && (r < 0) != (b < 0) ? r &+ b : r
        }
      }
    }
  }
}
