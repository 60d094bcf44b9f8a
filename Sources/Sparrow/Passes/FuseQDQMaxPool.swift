/// DequantizeLinear → MaxPool → QuantizeLinear with the same scale and zero point (what ONNX
/// Runtime's quantizer writes: MaxPool's output shares its input's parameters) becomes MaxPool
/// on the int8/uint8 data itself. Exact: dequantizing is increasing for a positive scale, so the
/// max commutes with it, and quantize(dequantize(v)) = v for a normal scale (the float error of
/// (v − z)·s/s is far below half a quantum). Skips the float32 tensor of the pool's input.
enum FuseQDQMaxPool {
  static func run(_ g: Graph) -> Graph {
    var g = g
    let index = GraphIndex(g)
    var removed = Set<Int>()
    for (ni, n) in g.nodes.enumerated() where n.opType == "MaxPool" && FuseQDQ.isDefault(n) {
      guard n.inputs.count == 1, n.outputs.count == 1 || (n.outputs.count == 2 && n.outputs[1].isEmpty),
        let dq = FuseQLinearAdd.input(n.inputs[0], g, index, removed),
        let qi = index.soleConsumer(of: n.outputs[0]), !removed.contains(qi),
        let y = FuseQDQ.quantizeParams(g.nodes[qi], g),
        let xs = FuseQDQ.constant(dq, 1, g), let xz = FuseQDQ.constant(dq, 2, g),
        let ys = g.constants[y[0]], let yz = g.constants[y[1]], ys.dtype == .float32,
        xs.floats[0].bitPattern == ys.floats[0].bitPattern, xs.floats[0].isNormal, xs.floats[0] > 0,
        (xs.floats[0] * 512).isFinite, xz.dtype == yz.dtype, xz.int64s == yz.int64s
      else { continue }
      var pool = n
      pool.inputs = [dq.inputs[0]]
      pool.outputs = g.nodes[qi].outputs
      g.nodes[ni] = pool
      removed.insert(qi)
    }
    g.nodes = g.nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    return FuseQDQ.removeDeadDequantize(g)
  }
}
