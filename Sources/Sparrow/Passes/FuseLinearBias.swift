/// `Add(MatMul(x, W), b)` (either operand order), with W a constant 2-D weight and b a constant
/// vector of its N_out columns, becomes the MatMul with `epilogue.bias`: the kernels add it per
/// output row, and a Gelu or Relu after it can then fuse too (FuseActivation, which runs next).
/// Where the MatMul's output feeds anything else, or b broadcasts otherwise, nothing changes.
enum FuseLinearBias {
  static func run(_ g: Graph) -> Graph {
    var g = g
    let ix = PatternIndex(g)
    var removed = Set<Int>()
    var replaced: [Int: Node] = [:]
    for (mi, mm) in g.nodes.enumerated() where mm.opType == "MatMul" && FoldAffine.isDefaultDomain(mm) {
      guard mm.inputs.count == 2, mm.outputs.count == 1, mm.epilogue.isEmpty, replaced[mi] == nil,
        let w = g.constants[mm.inputs[1]], w.rank == 2, w.dtype == .float32,
        let (ai, add) = ix.soleConsumer(of: mm.outputs[0], "Add"), !removed.contains(ai),
        let other = ix.other(add, mm.outputs[0]), let b = g.constants[other], b.dtype == .float32,
        b.rank == 1, b.count == w.shape[1]
      else { continue }
      var fused = mm
      fused.epilogue.bias = b.floats
      fused.outputs = add.outputs
      replaced[mi] = fused
      removed.insert(ai)
    }
    PatternIndex.apply(&g, removed: removed, replaced: replaced)
    return g
  }
}
