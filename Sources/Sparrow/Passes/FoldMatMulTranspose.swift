/// Attention moves heads with Transposes around its activation×activation MatMuls: Q and V as
/// `[B, S, H, D] → [B, H, S, D]`, Kᵀ as `[B, S, H, D] → [B, H, D, S]`, and the context back
/// to `[B, S, H, D]`. Each copies the whole tensor. A Transpose that only feeds such a MatMul,
/// or that only reads its output, folds into it (`epilogue.matmulViews`): the MatMul reads and
/// writes through strided views, and the batched GEMM takes the strides as leading dimensions
/// (a permutation it cannot express that way is still copied, at plan time's choice). MatMuls
/// with a constant 2-D B (linear layers) are left alone.
enum FoldMatMulTranspose {
  static func run(_ g: Graph) -> Graph {
    var g = g
    let ix = PatternIndex(g)
    var removed = Set<Int>()
    var replaced: [Int: Node] = [:]
    for (mi, mm) in g.nodes.enumerated() where mm.opType == "MatMul" && FoldAffine.isDefaultDomain(mm) {
      guard mm.inputs.count == 2, mm.outputs.count == 1, mm.epilogue.isEmpty,
        g.constants[mm.inputs[1]].map({ $0.rank != 2 }) ?? true
      else { continue }
      var node = mm
      var views = FusedEpilogue.MatMulViews()
      for i in 0..<2 {
        guard ix.uses[mm.inputs[i]] == 1, let (ti, t) = ix.producer(of: mm.inputs[i], "Transpose"),
          let perm = perm(t), !removed.contains(ti), g.constants[t.inputs[0]] == nil
        else { continue }
        node.inputs[i] = t.inputs[0]
        if i == 0 { views.a = perm } else { views.b = perm }
        removed.insert(ti)
      }
      if let (ti, t) = ix.soleConsumer(of: mm.outputs[0], "Transpose"), let perm = perm(t), !removed.contains(ti),
        !g.outputs.contains(where: { $0.name == mm.outputs[0] })
      {
        node.outputs = t.outputs
        views.out = perm
        removed.insert(ti)
      }
      guard views != FusedEpilogue.MatMulViews() else { continue }
      node.epilogue.matmulViews = views
      replaced[mi] = node
    }
    PatternIndex.apply(&g, removed: removed, replaced: replaced)
    return g
  }

  /// An explicit permutation of rank >= 3 (the batched products'; absent means reversed, whose
  /// rank the pass cannot know).
  private static func perm(_ t: Node) -> [Int]? {
    guard t.inputs.count == 1, t.outputs.count == 1, case .ints(let p)? = t.attributes["perm"], p.count >= 3,
      Set(p) == Set(0..<Int64(p.count))
    else { return nil }
    return p.map { Int($0) }
  }
}
