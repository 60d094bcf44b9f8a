/// Ops with weights, run by the sparse/dense kernels: Conv, Gemm, MatMul, ConvTranspose.
let linearOps: [any OpBuilder.Type] = [ConvOp.self, GemmOp.self, MatMulOp.self, ConvTransposeOp.self]
