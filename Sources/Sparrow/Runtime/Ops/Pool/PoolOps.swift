/// Pooling, normalisation and resampling ops.
let poolOps: [any OpBuilder.Type] = []
