/// Pooling, normalisation and resampling ops.
let poolOps: [any OpBuilder.Type] = [
  MaxPoolOp.self, AveragePoolOp.self, GlobalPoolOp.self, BatchNormOp.self, ResizeOp.self,
]
