/// Element-wise, shape and data-movement ops.
let tensorOps: [any OpBuilder.Type] = [
  IdentityOp.self, UnaryOp.self, ClipOp.self, BinaryOp.self, SoftmaxOp.self, ReduceOp.self, CastOp.self,
  ShapeOp.self, ConstantOfShapeOp.self, RangeOp.self, ExpandOp.self, ReshapeOp.self, FlattenOp.self, SqueezeOp.self,
  TransposeOp.self, ConcatOp.self, SplitOp.self, SliceOp.self, GatherOp.self, CompareOp.self, TopKOp.self,
  LogicalOp.self, PredicateOp.self, WhereOp.self, VariadicOp.self, GatherElementsOp.self, ScatterNDOp.self, TriluOp.self,
  CumSumOp.self, GatherNDOp.self, DropoutOp.self,
]

/// Identity: copies its input.
enum IdentityOp: OpBuilder {
  static let opTypes = ["Identity"]
  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    try c.setOutputs([try c.input(0)])
    return CopyStep()
  }
}

/// Dropout at inference: the output is the input (ratio unused), the optional mask all true.
/// Training mode (opset 12+'s third input) is refused when it is a constant true, and at run time
/// when a run-time value turns it on.
enum DropoutOp: OpBuilder {
  static let opTypes = ["Dropout"]
  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let x = try c.input(0)
    var runtimeMode = false
    if c.hasInput(2) {
      let m = try c.input(2)
      guard m.dtype == .bool, m.shape.reduce(1, *) == 1 else { throw c.error("training_mode must be one bool, got \(m)") }
      if let t = c.constant(2) {
        if case .bool(let v) = t.storage, v.first == true { throw c.error("Dropout in training mode is not supported (Sparrow runs inference)") }
      } else {
        runtimeMode = true
      }
    }
    let mask = c.node.outputs.count > 1 && !c.node.outputs[1].isEmpty
    try c.setOutputs([x] + (mask ? [TensorType(.bool, x.shape)] : []))
    return DropoutStep(mask: mask, runtimeMode: runtimeMode)
  }
}

struct DropoutStep: Step {
  let mask: Bool
  /// training_mode is a run-time input: refused when true.
  let runtimeMode: Bool
  func run(_ c: StepContext) throws(RuntimeError) {
    if runtimeMode, c.input(2, Bool.self).pointee {
      throw RuntimeError("Dropout in training mode is not supported (Sparrow runs inference)")
    }
    try CopyStep().run(c)
    if mask { c.output(1, Bool.self).update(repeating: true, count: c.outputType(1).shape.reduce(1, *)) }
  }
}

/// Copies input 0 to output 0 byte for byte (Identity, Reshape, Flatten, Squeeze, Unsqueeze);
/// nothing to do where the memory plan gave both the same bytes (`MemoryPlan`).
struct CopyStep: Step {
  func run(_ c: StepContext) throws(RuntimeError) {
    let bytes = c.outputType(0).bytes
    let y = UnsafeMutableRawPointer(c.output(0, UInt8.self)), x = UnsafeRawPointer(c.input(0, UInt8.self))
    if UnsafeRawPointer(y) != x { y.copyMemory(from: x, byteCount: bytes) }
  }
}
