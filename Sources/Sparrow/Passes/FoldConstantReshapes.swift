/// Turns Reshape, Unsqueeze, Squeeze and Identity nodes whose inputs are all constants into
/// constants. Paddle's exporter writes a convolution's bias as `Add(conv, Reshape(Constant,
/// Constant))`; folded, the channel analysis sees it as the per-channel constant it is.
/// Nodes it cannot fold (bad shapes, graph outputs) are left for the runtime to judge.
enum FoldConstantReshapes {
  static func run(_ g: Graph) -> Graph {
    var g = g
    let outputs = Set(g.outputs.map(\.name))
    var kept: [Node] = []
    var freed: Set<String> = []
    for n in g.nodes {
      if n.outputs.count == 1, !outputs.contains(n.outputs[0]), g.constants[n.outputs[0]] == nil,
        n.domain.isEmpty || n.domain == "ai.onnx", let t = fold(n, g)
      {
        g.constants[n.outputs[0]] = t
        freed.formUnion(n.inputs)
      } else {
        kept.append(n)
      }
    }
    g.nodes = kept
    // The folded nodes' inputs that nothing reads any more would be dead initializers.
    var read = outputs
    for n in kept { read.formUnion(n.inputs) }
    for name in freed.subtracting(read) { g.constants[name] = nil }
    return g
  }

  static func fold(_ n: Node, _ g: Graph) -> Tensor? {
    let inputs = n.inputs.filter { !$0.isEmpty }
    guard let first = n.inputs.first, let data = g.constants[first],
      inputs.allSatisfy({ g.constants[$0] != nil })
    else { return nil }
    var axesGiven: [Int]?
    if case .ints(let a)? = n.attributes["axes"] { axesGiven = a.map { Int(clamping: $0) } }
    if n.inputs.count > 1, let a = g.constants[n.inputs[1]], n.opType != "Reshape" {
      axesGiven = a.int64s.map { Int(clamping: $0) }
    }
    var shape: [Int]
    switch n.opType {
    case "Identity":
      return data
    case "Reshape":
      guard n.inputs.count == 2, let spec = g.constants[n.inputs[1]]?.int64s else { return nil }
      let allowZero = WeightLayers.intAttribute(n, "allowzero", 0) != 0
      shape = []
      var infer: Int?
      for (i, d) in spec.enumerated() {
        switch d {
        case 0 where !allowZero:
          guard i < data.rank else { return nil }
          shape.append(data.shape[i])
        case -1:
          guard infer == nil else { return nil }
          infer = i
          shape.append(1)
        default:
          guard d >= 0 else { return nil }
          shape.append(Int(clamping: d))
        }
      }
      if let i = infer {
        let rest = shape.reduce(1, *)
        guard rest > 0, data.count % rest == 0 else { return nil }
        shape[i] = data.count / rest
      }
    case "Unsqueeze":
      guard let axes = axesGiven else { return nil }
      let rank = data.rank + axes.count
      let norm = Set(axes.map { $0 < 0 ? $0 + rank : $0 })
      guard norm.count == axes.count, norm.allSatisfy({ $0 >= 0 && $0 < rank }) else { return nil }
      var rest = data.shape.makeIterator()
      shape = (0..<rank).map { norm.contains($0) ? 1 : (rest.next() ?? 1) }
    case "Squeeze":
      let norm = Set((axesGiven ?? data.shape.indices.filter { data.shape[$0] == 1 }).map { $0 < 0 ? $0 + data.rank : $0 })
      guard norm.allSatisfy({ $0 >= 0 && $0 < data.rank && data.shape[$0] == 1 }) else { return nil }
      shape = data.shape.indices.filter { !norm.contains($0) }.map { data.shape[$0] }
    default:
      return nil
    }
    return try? data.reshaped(shape)
  }
}
