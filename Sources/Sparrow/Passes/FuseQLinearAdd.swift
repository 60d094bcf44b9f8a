/// int8 residual adds (issue 19): DequantizeLinear(a) + DequantizeLinear(b) → Add → optional
/// Relu/Clip → QuantizeLinear, all per tensor with constant scales and zero points, becomes one
/// QLinearAdd node (ONNX Runtime's com.microsoft op of that name, inputs in its order: a, a_scale,
/// a_zero, b, b_scale, b_zero, y_scale, y_zero) with the activation as its clamp. It computes
/// the same float32 operations as the unfused graph (Runtime/Ops/Quant/QLinearAdd.swift), so the
/// integers are equal; it only skips the float32 tensors between the pairs. Runs after FuseQDQ:
/// the convolutions writing the Add's inputs are int8 steps by then.
enum FuseQLinearAdd {
  static func run(_ g: Graph) -> Graph {
    var g = g
    let index = GraphIndex(g)
    var removed = Set<Int>()
    for (ni, n) in g.nodes.enumerated() where n.opType == "Add" && FuseQDQ.isDefault(n) {
      guard n.inputs.count == 2, n.outputs.count == 1, !removed.contains(ni),
        let a = input(n.inputs[0], g, index, removed), let b = input(n.inputs[1], g, index, removed)
      else { continue }
      var consumed: Set<Int> = []
      var clamp: ClosedRange<Float>? = nil
      var next = index.soleConsumer(of: n.outputs[0]).flatMap { removed.contains($0) ? nil : $0 }
      if let act = next, g.nodes[act].outputs.count == 1, let range = FuseActivation.clampRange(g.nodes[act], g),
        range.0 <= range.1
      {
        clamp = range.0...range.1
        consumed.insert(act)
        next = index.soleConsumer(of: g.nodes[act].outputs[0]).flatMap { removed.contains($0) ? nil : $0 }
      }
      guard let qi = next, let y = FuseQDQ.quantizeParams(g.nodes[qi], g) else { continue }
      consumed.insert(qi)
      var fused = Node(
        name: n.name, opType: "QLinearAdd",
        inputs: [a.inputs[0], a.inputs[1], a.inputs[2], b.inputs[0], b.inputs[1], b.inputs[2]] + y,
        outputs: g.nodes[qi].outputs)
      fused.epilogue.clamp = clamp
      g.nodes[ni] = fused
      removed.formUnion(consumed)
    }
    g.nodes = g.nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    return FuseQDQ.removeDeadDequantize(g)
  }

  /// The DequantizeLinear writing `value` when it is per tensor with a constant scale and a
  /// constant int8/uint8 zero point.
  static func input(_ value: String, _ g: Graph, _ index: GraphIndex, _ removed: Set<Int>) -> Node? {
    guard let (_, dq) = FuseQDQ.dequantize(value, g, index, removed), dq.inputs.count >= 3,
      let s = FuseQDQ.constant(dq, 1, g), s.count == 1, s.dtype == .float32, let z = FuseQDQ.constant(dq, 2, g),
      z.count == 1, z.dtype == .uint8 || z.dtype == .int8
    else { return nil }
    return dq
  }
}
