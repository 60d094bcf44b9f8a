/// Learned gates found in the model (`FuseLearnedGate`): a convolution whose output the model
/// multiplies by a per-channel vector `g` computed at run time (`[N or 1, C, 1, 1]`). Planned as
/// one gated step (`GatedStep.outputGate`), so that in `model` mode rows with `g = 0` are never
/// computed, and a convolution reading the gated value skips those channels
/// (`GatedStep.inputGate`). In every other mode the step computes exactly what the Mul did.
struct LearnedGates {
  /// Gated value id → the gate vector's value id and its stride per image.
  private var gated: [Int: (gate: Int, stride: Int)] = [:]

  /// For a fused node whose convolution input `x` (`inputs[0]`) and gate `g` have these types:
  /// the gate's stride per image, or nil when the shapes do not fit (or either is a plan-time
  /// constant), and the node is planned as the convolution and the Mul.
  static func outputGateStride(_ node: Node, types: [TensorType?], constants: [Tensor?]) -> Int? {
    guard let slot = node.epilogue.learnedGate, slot < types.count, let x = types[0], let tg = types[slot],
      constants[0] == nil, constants[slot] == nil, let w = constants[1], w.rank == 4,
      x.dtype == .float32, tg.dtype == .float32, x.shape.count == 4, tg.shape.count == 4
    else { return nil }
    let n = x.shape[0], m = w.shape[0]
    guard tg.shape[1] == m, tg.shape[2] == 1, tg.shape[3] == 1, tg.shape[0] == n || tg.shape[0] == 1 else { return nil }
    return tg.shape[0] == 1 ? 0 : m
  }

  /// Records that value `id` is the output of the gated step `s` (zero where its gate is zero).
  mutating func gatedOutput(_ id: Int, of s: PlannedStep) {
    guard let og = (s.gated as? GatedStep)?.outputGate else { return }
    gated[id] = (gate: s.inputIds[og.slot], stride: og.stride)
  }

  /// A step that takes active channels reading a gated value directly: the step with the gate
  /// as an extra input.
  func readsGated(
    _ step: any Step, inputIds: [Int], inputTypes: [TensorType?], types: [TensorType]
  ) -> (any Step, [Int], [TensorType?])? {
    guard let x = inputIds.first, let g = gated[x], var conv = GatedStep.wrap(step) else {
      return nil
    }
    var ins = inputIds
    var tys = inputTypes
    while ins.count < 3 {
      ins.append(-1)
      tys.append(nil)
    }
    conv.inputGate = (slot: ins.count, stride: g.stride)
    ins.append(g.gate)
    tys.append(types[g.gate])
    return (conv, ins, tys)
  }
}
