/// Attention scores reach their Softmax as `Softmax(Add(Mul(S, c), mask))` (or `Div(S, c)`, the
/// Add in either order, either step alone): the scaling and the mask add become part of the
/// Softmax (`epilogue.softmaxInput`, the mask its input 1), which computes
/// `softmax(S · c + mask)` in one pass of the row kernel instead of three passes over the
/// scores. Only a Softmax over the last axis (axis -1, or opset 13's default) is matched; the
/// mask's shape is checked when the node is planned (it must broadcast to the scores).
enum FuseMaskedSoftmax {
  static func run(_ g: Graph) -> Graph {
    var g = g
    let ix = PatternIndex(g)
    var removed = Set<Int>()
    var replaced: [Int: Node] = [:]
    for (si, sm) in g.nodes.enumerated() where sm.opType == "Softmax" && FoldAffine.isDefaultDomain(sm) {
      guard sm.inputs.count == 1, sm.outputs.count == 1, sm.epilogue.isEmpty, lastAxis(sm, opset: g.opset) else {
        continue
      }
      var x = sm.inputs[0], chain: [Int] = [], mask: String? = nil, scale: Float = 1
      /// `v` as `S · c` or `S / c`, when `v` is read once.
      func scaled(_ v: String) -> (Int, String, Float)? {
        guard ix.uses[v] == 1 else { return nil }
        if let (i, n) = ix.producer(of: v, "Mul"), n.inputs.count == 2 {
          for (s, k) in [(n.inputs[0], n.inputs[1]), (n.inputs[1], n.inputs[0])] {
            if let c = ix.scalar(k), c.isFinite, g.constants[s] == nil { return (i, s, c) }
          }
        }
        if let (i, n) = ix.producer(of: v, "Div"), n.inputs.count == 2, let c = ix.scalar(n.inputs[1]), c.isFinite,
          c != 0,
          g.constants[n.inputs[0]] == nil
        {
          return (i, n.inputs[0], 1 / c)
        }
        return nil
      }
      if ix.uses[x] == 1, let (ai, add) = ix.producer(of: x, "Add"), add.inputs.count == 2,
        add.inputs[0] != add.inputs[1]
      {
        // The scores are the scaled operand, else a MatMul's output (Q·Kᵀ unscaled).
        var picked = false
        for (s, m) in [(add.inputs[0], add.inputs[1]), (add.inputs[1], add.inputs[0])] where !picked {
          if let (mi, src, c) = scaled(s) {
            (x, mask, scale, chain, picked) = (src, m, c, [mi, ai], true)
          }
        }
        for (s, m) in [(add.inputs[0], add.inputs[1]), (add.inputs[1], add.inputs[0])] where !picked {
          if ix.producer(of: s, "MatMul") != nil && ix.producer(of: m, "MatMul") == nil {
            (x, mask, chain, picked) = (s, m, [ai], true)
          }
        }
        guard picked else { continue }
      } else if let (mi, src, c) = scaled(x) {
        (x, scale, chain) = (src, c, [mi])
      } else {
        continue
      }
      guard !chain.contains(where: removed.contains), !removed.contains(si) else { continue }
      removed.formUnion(chain)
      var fused = sm
      fused.inputs = [x] + (mask.map { [$0] } ?? [])
      fused.attributes["axis"] = .int(-1)
      fused.epilogue.softmaxInput = FusedEpilogue.SoftmaxInput(scale: scale, masked: mask != nil)
      replaced[si] = fused
    }
    PatternIndex.apply(&g, removed: removed, replaced: replaced)
    return g
  }

  /// axis -1 means the last axis under both definitions (before opset 13 the input is coerced to
  /// 2-D at the axis, which for the last axis is the same); the default is -1 only from 13.
  static func lastAxis(_ n: Node, opset: Int) -> Bool {
    switch n.attributes["axis"] {
    case .int(let a)?: return a == -1
    case nil: return opset >= 13
    default: return false
    }
  }
}
