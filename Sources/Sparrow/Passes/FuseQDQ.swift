/// QDQ fusion (issue 19): a Conv (one group), MatMul or Gemm whose activation comes through a
/// DequantizeLinear (per tensor), whose weight is a DequantizeLinear of constant int8 values
/// (zero points 0, per tensor or per output channel), whose bias (if any) is a DequantizeLinear
/// of int32 values at scale x_scale · w_scale, and whose output, after an optional Relu or
/// Clip, goes only to a QuantizeLinear (per tensor), becomes one QLinearConv or QLinearMatMul
/// node that runs on the int8 kernels (Runtime/Ops/Quant/QLinearKernelSteps.swift) with the
/// activation as its epilogue clamp. This is what ONNX Runtime's QDQ transformers do; like them
/// it computes round(acc · x_scale · w_scale / y_scale) where the QDQ graph rounds the float32
/// result, so a value can land one quantum apart from the unfused graph. Everything else keeps
/// running in float32 between its pairs.
enum FuseQDQ {
  static func run(_ g: Graph) -> Graph {
    var g = g
    let index = GraphIndex(g)
    var removed = Set<Int>()
    for (li, layer) in g.nodes.enumerated() where isDefault(layer) && layer.outputs.count == 1 {
      guard ["Conv", "MatMul", "Gemm"].contains(layer.opType), layer.epilogue.isEmpty, !removed.contains(li),
        let fused = match(layer, g, index, removed)
      else { continue }
      g.nodes[li] = fused.node
      for (name, t) in fused.constants { g.constants[name] = t }
      removed.formUnion(fused.consumed)
    }
    g.nodes = g.nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    return removeDeadDequantize(g)
  }

  struct Fused {
    var node: Node
    var constants: [String: Tensor]
    var consumed: Set<Int>
  }

  static func isDefault(_ n: Node) -> Bool { n.domain.isEmpty || n.domain == "ai.onnx" }

  /// The DequantizeLinear writing `value`, when it is one (default domain, 2 or 3 inputs).
  static func dequantize(_ value: String, _ g: Graph, _ index: GraphIndex, _ removed: Set<Int>) -> (Int, Node)? {
    guard let i = index.producer(of: value), !removed.contains(i) else { return nil }
    let n = g.nodes[i]
    guard n.opType == "DequantizeLinear", isDefault(n), n.inputs.count >= 2, !n.inputs[1].isEmpty else { return nil }
    if case .int(let b)? = n.attributes["block_size"], b != 0 { return nil }
    return (i, n)
  }

  static func constant(_ n: Node, _ i: Int, _ g: Graph) -> Tensor? {
    i < n.inputs.count && !n.inputs[i].isEmpty ? g.constants[n.inputs[i]] : nil
  }

  static func match(_ layer: Node, _ g: Graph, _ index: GraphIndex, _ removed: Set<Int>) -> Fused? {
    guard layer.inputs.count >= 2, let (xi, dx) = dequantize(layer.inputs[0], g, index, removed),
      let xs = constant(dx, 1, g), xs.count == 1, let xz = constant(dx, 2, g), xz.count == 1,
      xz.dtype == .uint8 || xz.dtype == .int8, g.constants[dx.inputs[0]] == nil,
      let (wi, dw) = dequantize(layer.inputs[1], g, index, removed), let w = constant(dw, 0, g),
      case .int8(let wv) = w.storage, let ws = constant(dw, 1, g)
    else { return nil }
    if let wz = constant(dw, 2, g) {
      guard wz.dtype == .int8, wz.int64s.allSatisfy({ $0 == 0 }) else { return nil }
    } else if dw.inputs.count > 2 && !dw.inputs[2].isEmpty {
      return nil  // a zero point computed at run time
    }
    // The weight's output-channel axis and count; the layout the fused node wants.
    var opType = "QLinearConv", weights = w, channels = 0, wAxis = 0, transposed = false
    var attributes = layer.attributes
    switch layer.opType {
    case "Conv":
      guard w.rank == 4, (try? int(layer, "group", 1)) == 1 else { return nil }
      (channels, wAxis) = (w.shape[0], 0)
    case "MatMul":
      guard w.rank == 2 else { return nil }
      (opType, channels, wAxis, attributes) = ("QLinearMatMul", w.shape[1], 1, [:])
    default:  // Gemm
      guard w.rank == 2, (try? int(layer, "transA", 0)) == 0, float(layer, "alpha") == 1, float(layer, "beta") == 1,
        let transB = try? int(layer, "transB", 0)
      else { return nil }
      (opType, attributes) = ("QLinearMatMul", [:])
      if transB != 0 {
        // W [N, K] becomes B [K, N]: the fused node multiplies x · B.
        let (nOut, k) = (w.shape[0], w.shape[1])
        var t = [Int8](repeating: 0, count: wv.count)
        for r in 0..<nOut { for c in 0..<k { t[c * nOut + r] = wv[r * k + c] } }
        weights = Tensor(checkedShape: [k, nOut], storage: .int8(t))
        transposed = true
        (channels, wAxis) = (nOut, 0)
      } else {
        (channels, wAxis) = (w.shape[1], 1)
      }
    }
    if ws.count != 1 {
      let axis = (try? int(dw, "axis", 1)) ?? 1
      guard ws.rank == 1, ws.count == channels, axis == wAxis || axis == wAxis - w.rank else { return nil }
    }
    var consumed: Set<Int> = []
    var constants: [String: Tensor] = [:]
    // Bias: int32 values at scale x_scale · w_scale (what quantizers write), zero point 0.
    var biasName: String? = nil
    if layer.inputs.count > 2, !layer.inputs[2].isEmpty {
      guard let (bi, db) = dequantize(layer.inputs[2], g, index, removed), let b = constant(db, 0, g),
        b.dtype == .int32, b.count == channels, b.rank == 1, let bs = constant(db, 1, g),
        bs.count == 1 || bs.count == channels
      else { return nil }
      if let bz = constant(db, 2, g), !bz.int64s.allSatisfy({ $0 == 0 }) { return nil }
      let x = xs.floats[0], wsv = ws.floats, bsv = bs.floats
      for c in 0..<channels {
        let want = x * wsv[ws.count == 1 ? 0 : c], got = bsv[bs.count == 1 ? 0 : c]
        guard abs(want - got) <= 1e-6 * abs(want) else { return nil }
      }
      biasName = db.inputs[0]
      if index.uses(layer.inputs[2]) == 1 { consumed.insert(bi) }
    }
    // Output: an optional Relu/Clip, then a QuantizeLinear per tensor with a constant zero
    // point; without one the output stays float32 (what `sparrow quantize` writes, quantizing
    // layer inputs only): the kernels' dequantize epilogue.
    var outputs = layer.outputs, yInputs = ["", ""]
    var clamp: ClosedRange<Float>? = nil
    var next = index.soleConsumer(of: layer.outputs[0]).flatMap { removed.contains($0) ? nil : $0 }
    if let a = next, let range = FuseActivation.clampRange(g.nodes[a], g), g.nodes[a].outputs.count == 1 {
      clamp = range.0...range.1
      consumed.insert(a)
      outputs = g.nodes[a].outputs
      next = index.soleConsumer(of: outputs[0]).flatMap { removed.contains($0) ? nil : $0 }
    }
    if let qi = next, let y = quantizeParams(g.nodes[qi], g) {
      consumed.insert(qi)
      yInputs = y
      outputs = g.nodes[qi].outputs
    }
    if index.uses(layer.inputs[0]) == 1 { consumed.insert(xi) }
    if index.uses(layer.inputs[1]) == 1 { consumed.insert(wi) }

    var wName = dw.inputs[0]
    if transposed {
      wName = Passes.freshName(wName + "_kn", in: g)
      constants[wName] = weights
    }
    var wzName = dw.inputs.count > 2 ? dw.inputs[2] : ""
    if wzName.isEmpty {
      wzName = Passes.freshName(wName + "_zero", in: g)
      constants[wzName] = Tensor(checkedShape: [], storage: .int8([0]))
    }
    var node = Node(
      name: layer.name, opType: opType,
      inputs: [dx.inputs[0], dx.inputs[1], dx.inputs[2], wName, dw.inputs[1], wzName] + yInputs
        + (biasName.map { [$0] } ?? []),
      outputs: outputs, attributes: attributes)
    node.epilogue.clamp = clamp
    node.epilogue.dequantizedOutput = yInputs[0].isEmpty
    return Fused(node: node, constants: constants, consumed: consumed)
  }

  /// y_scale and y_zero_point of a QuantizeLinear per tensor with constant parameters.
  static func quantizeParams(_ q: Node, _ g: Graph) -> [String]? {
    guard q.opType == "QuantizeLinear", isDefault(q), q.inputs.count >= 3, q.outputs.count == 1,
      let ys = constant(q, 1, g), ys.count == 1, let yz = constant(q, 2, g), yz.count == 1,
      yz.dtype == .uint8 || yz.dtype == .int8
    else { return nil }
    if case .int(let b)? = q.attributes["block_size"], b != 0 { return nil }
    return [q.inputs[1], q.inputs[2]]
  }

  static func int(_ n: Node, _ name: String, _ def: Int) throws -> Int {
    switch n.attributes[name] {
    case nil: return def
    case .int(let v)?: return Int(v)
    default: throw ModelError(node: n, "attribute '\(name)' must be an int")
    }
  }

  static func float(_ n: Node, _ name: String) -> Float? {
    switch n.attributes[name] {
    case nil: return 1
    case .float(let v)?: return v
    default: return nil
    }
  }

  /// DequantizeLinear nodes whose outputs nothing reads any more (their consumers were fused).
  static func removeDeadDequantize(_ g: Graph) -> Graph {
    var g = g
    let uses = g.useCounts
    g.nodes.removeAll { n in
      n.opType == "DequantizeLinear" && isDefault(n) && n.outputs.allSatisfy { uses[$0, default: 0] == 0 }
    }
    return g
  }
}
