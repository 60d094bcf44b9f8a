/// Every op builder. Each family keeps its own list beside its ops.
enum OpRegistry {
  static var all: [any OpBuilder.Type] { linearOps + tensorOps + poolOps + transformerOps + quantOps + [GateScoreOp.self] }
}
