/// Element-wise, shape and data-movement ops.
let tensorOps: [any OpBuilder.Type] = [
  IdentityOp.self, UnaryOp.self, ClipOp.self, BinaryOp.self, SoftmaxOp.self, ReduceOp.self, CastOp.self,
  ShapeOp.self, ConstantOfShapeOp.self, RangeOp.self, ExpandOp.self, ReshapeOp.self, FlattenOp.self, SqueezeOp.self,
  TransposeOp.self, ConcatOp.self, SplitOp.self, SliceOp.self, GatherOp.self, CompareOp.self, TopKOp.self,
  LogicalOp.self, PredicateOp.self, WhereOp.self, VariadicOp.self, GatherElementsOp.self, ScatterNDOp.self, TriluOp.self,
  CumSumOp.self,
]

/// Identity: copies its input.
enum IdentityOp: OpBuilder {
  static let opTypes = ["Identity"]
  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    try c.setOutputs([try c.input(0)])
    return CopyStep()
  }
}

/// Copies input 0 to output 0 byte for byte (Identity, Reshape, Flatten, Squeeze, Unsqueeze).
struct CopyStep: Step {
  func run(_ c: StepContext) throws(RuntimeError) {
    let bytes = c.outputType(0).bytes
    UnsafeMutableRawPointer(c.output(0, UInt8.self)).copyMemory(from: c.input(0, UInt8.self), byteCount: bytes)
  }
}
