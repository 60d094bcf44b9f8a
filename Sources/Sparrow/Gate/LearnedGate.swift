/// Learned gates found in the model: `Mul(conv(x), g)` where `g` is a per-channel vector the
/// model computes at run time (`[N or 1, C, 1, 1]`; e.g. GAP → FC → ReLU → top-k mask, as
/// Feature Boosting and Suppression exports) and the convolution's output feeds only the Mul.
/// Found at plan time, where shapes are known: the multiply becomes part of the convolution's
/// step (moved to the Mul's place, after `g` is computed), so that in `model` mode rows with
/// `g = 0` are never computed, and a convolution reading the gated value skips those channels.
/// In every other mode the fused step computes exactly what the Mul did.
struct LearnedGates {
  private let uses: [String: Int]
  /// Gated value id → the gate vector's value id and its stride per image.
  private var gated: [Int: (gate: Int, stride: Int)] = [:]

  init(_ g: Graph) { uses = g.useCounts }

  /// When `node` is such a Mul, removes the convolution's step from `steps` and returns the
  /// Mul's output type and the fused step (its output ids still to be set).
  mutating func fuse(
    _ node: Node, inputIds: [Int], inputTypes: [TensorType?], constants: [Tensor?], steps: inout [PlannedStep],
    layers: inout [LayerReport]
  ) -> (TensorType, PlannedStep)? {
    guard node.opType == "Mul", node.domain.isEmpty || node.domain == "ai.onnx", node.inputs.count == 2,
      node.outputs.count == 1, inputIds.allSatisfy({ $0 >= 0 }), constants.allSatisfy({ $0 == nil })
    else { return nil }
    for (a, b) in [(0, 1), (1, 0)] {
      guard let ta = inputTypes[a], let tb = inputTypes[b], ta.dtype == .float32, tb.dtype == .float32,
        ta.shape.count == 4, tb.shape.count == 4, uses[node.inputs[a]] == 1
      else { continue }
      let n = ta.shape[0], m = ta.shape[1]
      guard tb.shape[1] == m, tb.shape[2] == 1, tb.shape[3] == 1, tb.shape[0] == n || tb.shape[0] == 1 else { continue }
      guard let si = steps.lastIndex(where: { $0.outputIds.contains(inputIds[a]) }),
        var conv = GatedStep.wrap(steps[si].step), conv.outputGate == nil
      else { continue }
      var ins = steps[si].inputIds, types = steps[si].inputTypes
      while ins.count < 3 {
        ins.append(-1)
        types.append(nil)
      }
      conv.outputGate = (slot: ins.count, stride: tb.shape[0] == 1 ? 0 : m)
      ins.append(inputIds[b])
      types.append(tb)
      let old = steps.remove(at: si)
      if let li = layers.lastIndex(where: { $0.node == old.node.name }) { layers[li].gate = conv.gateInfo.kind }
      return (ta, PlannedStep(step: conv, node: old.node, inputIds: ins, outputIds: [], inputTypes: types, outputTypes: []))
    }
    return nil
  }

  /// Records that value `id` is the output of the fused step `s` (zero where its gate is zero).
  mutating func gatedOutput(_ id: Int, of s: PlannedStep) {
    guard let og = s.gated?.outputGate else { return }
    gated[id] = (gate: s.inputIds[og.slot], stride: og.stride)
  }

  /// A convolution reading a gated value directly: the step with the gate as an extra input.
  func readsGated(_ step: any Step, inputIds: [Int], types: [TensorType]) -> (any Step, [Int], [TensorType?])? {
    guard let x = inputIds.first, let g = gated[x], var conv = GatedStep.wrap(step) else {
      return nil
    }
    var ins = inputIds
    var tys: [TensorType?] = inputIds.map { $0 >= 0 ? types[$0] : nil }
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
