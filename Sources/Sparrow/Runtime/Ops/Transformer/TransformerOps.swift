/// Ops that transformer models need beyond the CNN set: normalisation over trailing axes,
/// Einsum.
let transformerOps: [any OpBuilder.Type] = [LayerNormOp.self, EinsumOp.self]
