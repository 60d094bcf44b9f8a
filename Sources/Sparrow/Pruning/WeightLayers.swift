/// A Conv, Gemm or MatMul whose weight is a constant fp32 tensor (an initializer or a `Constant`
/// node), seen as the matrix the kernels multiply by: `rows` = output channels (M), `cols` = K.
struct WeightLayer: Sendable {
  /// Index in `Graph.nodes`.
  let node: Int
  let name: String
  let op: String
  /// The constant holding the weight.
  let weight: String
  let shape: [Int]
  let rows: Int, cols: Int
  /// Stored K x M (Gemm with transB = 0, MatMul): the matrix view is the transpose.
  let transposed: Bool
  /// Columns per input channel: kh·kw for a convolution, 1 for Gemm and MatMul. K is
  /// `Cin/group · kPerChannel`, input channel major, as ONNX flattens `[Cout, Cin, kh, kw]`.
  let kPerChannel: Int
  var count: Int { rows * cols }

  /// The weight as a row-major `rows x cols` matrix.
  func matrix(_ t: Tensor) -> [Float] {
    let f = t.floats
    guard transposed else { return f }
    var m = [Float](repeating: 0, count: f.count)
    for k in 0..<cols { for o in 0..<rows { m[o * cols + k] = f[k * rows + o] } }
    return m
  }

  /// The matrix back in the weight's own layout and shape.
  func tensor(_ m: [Float]) throws(PruneError) -> Tensor {
    var f = m
    if transposed {
      for k in 0..<cols { for o in 0..<rows { f[k * rows + o] = m[o * cols + k] } }
    }
    do { return try Tensor(shape: shape, floats: f) } catch { throw PruneError("\(name): \(error.message)") }
  }

  var shapeText: String { shape.map(String.init).joined(separator: "x") }
}

/// A weighted layer that is not pruned, and why.
struct SkippedLayer: Sendable {
  let node: Int, name: String, op: String, shape: [Int], reason: String
}

enum WeightLayers {
  /// The prunable layers in graph order, and the layers with constant weights left alone.
  /// Depthwise convolutions are left alone (the runtime runs them with a direct dense loop,
  /// and N:M along one input channel is impossible); with `skipFirstLast` the first and the
  /// last prunable layer are too.
  static func find(_ g: Graph, skipFirstLast: Bool) -> (layers: [WeightLayer], skipped: [SkippedLayer]) {
    var layers: [WeightLayer] = []
    var skipped: [SkippedLayer] = []
    var owner: [String: String] = [:]
    // MatMul(x, Transpose(W)) with W a constant N_out x K (torch's Linear as some exporters write
    // it): W is the layer's weight, already in the matrix view.
    var transposedConstant: [String: String] = [:]
    for n in g.nodes where n.opType == "Transpose" && (n.domain.isEmpty || n.domain == "ai.onnx") && n.inputs.count == 1 {
      if case .ints(let p)? = n.attributes["perm"], p != [1, 0] { continue }
      if let t = g.constants[n.inputs[0]], t.rank == 2, n.outputs.count == 1 { transposedConstant[n.outputs[0]] = n.inputs[0] }
    }
    for (i, n) in g.nodes.enumerated() where n.domain.isEmpty || n.domain == "ai.onnx" {
      guard ["Conv", "Gemm", "MatMul"].contains(n.opType), n.inputs.count >= 2 else { continue }
      if n.opType == "MatMul", g.constants[n.inputs[1]] == nil, let src = transposedConstant[n.inputs[1]],
        let w = g.constants[src], w.dtype == .float32, w.count > 0
      {
        if let other = owner[src] {
          skipped.append(
            SkippedLayer(node: i, name: n.name, op: n.opType, shape: w.shape, reason: "shares its weight with '\(other)' (pruned there)"))
          continue
        }
        owner[src] = n.name
        layers.append(
          WeightLayer(
            node: i, name: n.name, op: "MatMul", weight: src, shape: w.shape, rows: w.shape[0], cols: w.shape[1],
            transposed: false, kPerChannel: 1))
        continue
      }
      guard let w = g.constants[n.inputs[1]] else { continue }
      let shape = w.shape
      func skip(_ reason: String) { skipped.append(SkippedLayer(node: i, name: n.name, op: n.opType, shape: shape, reason: reason)) }
      guard w.dtype == .float32, w.count > 0 else {
        skip("weight is \(w.dtype) with \(w.count) values, not fp32")
        continue
      }
      if let other = owner[n.inputs[1]] {
        skip("shares its weight with '\(other)' (pruned there)")
        continue
      }
      var layer: WeightLayer
      switch n.opType {
      case "Conv":
        guard shape.count >= 3 else { skip("weight of rank \(shape.count) is not a convolution's"); continue }
        let group = intAttribute(n, "group", 1)
        if group > 1, shape[1] == 1 {
          skip("depthwise")
          continue
        }
        let kpc = shape[2...].reduce(1, *)
        layer = WeightLayer(
          node: i, name: n.name, op: "Conv", weight: n.inputs[1], shape: shape, rows: shape[0],
          cols: shape[1] * kpc, transposed: false, kPerChannel: kpc)
      case "Gemm":
        guard shape.count == 2 else { skip("weight of rank \(shape.count)"); continue }
        let transB = intAttribute(n, "transB", 0) != 0
        layer = WeightLayer(
          node: i, name: n.name, op: "Gemm", weight: n.inputs[1], shape: shape, rows: transB ? shape[0] : shape[1],
          cols: transB ? shape[1] : shape[0], transposed: !transB, kPerChannel: 1)
      default:
        guard shape.count == 2 else { skip("weight of rank \(shape.count) (batched MatMul)"); continue }
        layer = WeightLayer(
          node: i, name: n.name, op: "MatMul", weight: n.inputs[1], shape: shape, rows: shape[1], cols: shape[0],
          transposed: true, kPerChannel: 1)
      }
      owner[n.inputs[1]] = n.name
      layers.append(layer)
    }
    if skipFirstLast, let first = layers.first, let last = layers.last {
      skipped.append(
        SkippedLayer(node: first.node, name: first.name, op: first.op, shape: first.shape, reason: "first layer (--skip-first-last)"))
      if layers.count > 1 {
        skipped.append(
          SkippedLayer(node: last.node, name: last.name, op: last.op, shape: last.shape, reason: "last layer (--skip-first-last)"))
      }
      layers = Array(layers.dropFirst().dropLast())
    }
    return (layers, skipped)
  }

  static func intAttribute(_ n: Node, _ key: String, _ fallback: Int) -> Int {
    if case .int(let v)? = n.attributes[key] { return Int(clamping: v) }
    return fallback
  }
}
