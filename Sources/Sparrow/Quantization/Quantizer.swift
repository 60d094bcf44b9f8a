import Foundation

/// How `Quantizer` sets activation ranges from the calibration runs.
public enum CalibrationMethod: Sendable, Equatable, CustomStringConvertible {
  /// The smallest and largest value seen.
  case minMax
  /// The values at percentiles (100 - p) and p of everything seen (outliers clipped).
  case percentile(Double)

  public init(parsing s: String) throws(QuantizeError) {
    if s == "minmax" {
      self = .minMax
      return
    }
    if s.hasPrefix("percentile:"), let p = Double(s.dropFirst("percentile:".count)), p > 50, p <= 100 {
      self = .percentile(p)
      return
    }
    throw QuantizeError("--method '\(s)': expected minmax or percentile:P with 50 < P <= 100 (e.g. percentile:99.99)")
  }

  public var description: String {
    switch self {
    case .minMax: return "minmax"
    case .percentile(let p): return "percentile:\(p)"
    }
  }
}

public struct QuantizeOptions: Sendable {
  public var method: CalibrationMethod = .minMax
  /// Activations as uint8 (asymmetric, ONNX Runtime's default) or int8 (symmetric).
  public var activationType: DType = .uint8
  /// One weight scale per output channel (opset >= 13), else one per tensor.
  public var perChannel = true
  /// Op types whose inputs are quantized.
  public var ops: Set<String> = ["Conv", "Gemm", "MatMul"]
  /// Values kept per tensor for percentiles (a seeded sample beyond that).
  public var sampleLimit = 1 << 20
  public init() {}
}

/// Why a model cannot be quantized as asked: one line for the user.
public struct QuantizeError: Error, CustomStringConvertible, Sendable, Equatable {
  public let message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}

extension QuantizeError {
  /// A calibration run did not produce an activation to quantize.
  static func notComputed(_ name: String) -> any Error {
    QuantizeError("activation '\(name)' was not computed during calibration")
  }
}

/// What quantization did, layer by layer.
public struct QuantizeReport: Sendable, Codable {
  public struct Layer: Sendable, Codable {
    public var name: String
    public var op: String
    /// The input activation's range and its scale and zero point.
    public var inputRange: [Float]
    public var inputScale: Float
    public var inputZeroPoint: Int
    /// Weight scales: one, or one per output channel (their minimum and maximum).
    public var weightScales: Int
    public var weightScaleRange: [Float]
    /// Weights that are zero before and after (pruned weights stay exactly zero).
    public var zerosBefore: Int
    public var zerosAfter: Int
    public var weights: Int
    public var note: String
  }
  public var layers: [Layer] = []
  public var skipped: [String] = []
  public var calibrationRuns = 0
}

/// Static post-training quantization to the QDQ form ONNX Runtime writes and runs: each quantized
/// layer's input activation gets a QuantizeLinear/DequantizeLinear pair with a scale calibrated
/// on the given inputs, its weight becomes int8 (symmetric, zero point 0, so a pruned zero stays
/// exactly zero) behind a DequantizeLinear, and a Conv/Gemm bias becomes int32 at scale
/// input scale × weight scale. Everything else stays float.
public enum Quantizer {
  public static func quantize(
    _ graph: Graph, calibration: [[String: Tensor]], options o: QuantizeOptions = QuantizeOptions()
  ) throws -> (Graph, QuantizeReport) {
    guard !calibration.isEmpty else { throw QuantizeError("no calibration inputs: give --calibration NAME=FILE.npy") }
    guard o.activationType == .uint8 || o.activationType == .int8 else {
      throw QuantizeError("activations can be uint8 or int8, not \(o.activationType)")
    }
    let perChannel = o.perChannel && graph.opset >= 13
    var report = QuantizeReport()
    if o.perChannel && !perChannel {
      report.skipped.append("opset \(graph.opset) < 13: one weight scale per tensor (per-axis scales need opset 13)")
    }
    // The layers: a quantizable op with a float activation input and a constant float weight.
    var layers: [(node: Int, weightAxis: Int, biasInput: Int?)] = []
    for (i, n) in graph.nodes.enumerated() where o.ops.contains(n.opType) && n.domain.isEmpty {
      guard n.inputs.count >= 2, graph.constants[n.inputs[0]] == nil else { continue }
      guard let w = graph.constants[n.inputs[1]], w.dtype == .float32 else {
        report.skipped.append("\(n.label): its weight is not a float constant")
        continue
      }
      switch n.opType {
      case "Conv":
        guard w.rank >= 3 else { continue }
        layers.append((i, 0, n.inputs.count > 2 && !n.inputs[2].isEmpty ? 2 : nil))
      case "Gemm":
        guard w.rank == 2 else { continue }
        if case .int(let t)? = n.attributes["transA"], t != 0 {
          report.skipped.append("\(n.label): transA = 1 is not quantized")
          continue
        }
        var transB = false
        if case .int(let t)? = n.attributes["transB"] { transB = t != 0 }
        // A bias C per output column only (a row vector); other shapes stay float.
        var bias: Int? = nil
        if n.inputs.count > 2, !n.inputs[2].isEmpty, let c = graph.constants[n.inputs[2]],
          c.count == w.shape[transB ? 0 : 1],
          case .float(let beta) = n.attributes["beta"] ?? .float(1), beta == 1,
          case .float(let alpha) = n.attributes["alpha"] ?? .float(1), alpha == 1
        {
          bias = 2
        }
        layers.append((i, transB ? 0 : 1, bias))
      default:  // MatMul with a 2-D constant B [K, N]
        guard w.rank == 2 else { continue }
        layers.append((i, 1, nil))
      }
    }
    guard !layers.isEmpty else {
      throw QuantizeError(
        "no layer to quantize: no \(o.ops.sorted().joined(separator: "/")) with a constant float weight")
    }

    // Calibration: run the float model with every quantized activation as an extra output.
    let activations = Array(Set(layers.map { graph.nodes[$0.node].inputs[0] })).sorted()
    let ranges = try calibrate(graph, activations: activations, inputs: calibration, options: o)
    report.calibrationRuns = calibration.count

    var g = graph
    var newNodes: [Node] = []
    var dq: [String: (name: String, scale: Float, zero: Int32)] = [:]
    func fresh(_ base: String) -> String {
      var name = base
      var k = 1
      while g.constants[name] != nil || g.nodes.contains(where: { $0.outputs.contains(name) }) {
        name = "\(base)_\(k)"
        k += 1
      }
      return name
    }
    for a in activations {
      let (lo, hi) = ranges[a]!
      let (scale, zero) = activationParams(lo: lo, hi: hi, type: o.activationType)
      let s = fresh("\(a)_scale"), z = fresh("\(a)_zero_point")
      g.constants[s] = try Tensor(shape: [], floats: [scale])
      g.constants[z] =
        o.activationType == .uint8
        ? try Tensor(shape: [], storage: .uint8([UInt8(zero)])) : try Tensor(shape: [], storage: .int8([Int8(zero)]))
      let q = fresh("\(a)_quantized"), d = fresh("\(a)_dequantized")
      newNodes.append(
        Node(name: fresh("\(a)_QuantizeLinear"), opType: "QuantizeLinear", inputs: [a, s, z], outputs: [q]))
      newNodes.append(
        Node(name: fresh("\(a)_DequantizeLinear"), opType: "DequantizeLinear", inputs: [q, s, z], outputs: [d]))
      dq[a] = (d, scale, zero)
    }
    for (index, axis, biasInput) in layers {
      var n = g.nodes[index]
      let a = dq[n.inputs[0]]!
      let w = g.constants[n.inputs[1]]!
      let wf = w.floats
      let channels = perChannel ? w.shape[axis] : 1
      let inner = w.shape[(axis + 1)...].reduce(1, *)
      var maxAbs = [Float](repeating: 0, count: channels)
      for (i, v) in wf.enumerated() {
        let c = channels == 1 ? 0 : (i / inner) % channels
        maxAbs[c] = max(maxAbs[c], abs(v))
      }
      let scales = maxAbs.map { $0 > 0 ? $0 / 127 : 1 }
      var q = [Int8](repeating: 0, count: wf.count)
      for (i, v) in wf.enumerated() {
        let c = channels == 1 ? 0 : (i / inner) % channels
        q[i] = Int8(min(max((v / scales[c]).rounded(.toNearestOrEven), -127), 127))
      }
      let wq = fresh("\(n.inputs[1])_quantized"), ws = fresh("\(n.inputs[1])_scale")
      let wz = fresh("\(n.inputs[1])_zero_point"), wd = fresh("\(n.inputs[1])_dequantized")
      g.constants[wq] = try Tensor(shape: w.shape, storage: .int8(q))
      g.constants[ws] = try Tensor(shape: channels == 1 ? [] : [channels], floats: scales)
      g.constants[wz] = try Tensor(
        shape: channels == 1 ? [] : [channels], storage: .int8(Array(repeating: 0, count: channels)))
      var attrs: [String: Attribute] = [:]
      if channels > 1 { attrs["axis"] = .int(Int64(axis)) }
      newNodes.append(
        Node(
          name: fresh("\(n.inputs[1])_DequantizeLinear"), opType: "DequantizeLinear", inputs: [wq, ws, wz],
          outputs: [wd], attributes: attrs))
      var note = ""
      if let bi = biasInput, let b = g.constants[n.inputs[bi]], b.dtype == .float32 {
        // int32 bias at scale (input scale × weight scale), as ONNX Runtime's QLinearConv takes it.
        let bf = b.floats
        let bScales = (0..<bf.count).map { a.scale * scales[channels == 1 ? 0 : $0] }
        let bq = zip(bf, bScales).map { Int32(clamping: Int64(($0 / $1).rounded(.toNearestOrEven).clamped(-2e9, 2e9))) }
        let bqName = fresh("\(n.inputs[bi])_quantized"), bsName = fresh("\(n.inputs[bi])_scale")
        let bdName = fresh("\(n.inputs[bi])_dequantized")
        g.constants[bqName] = try Tensor(shape: b.shape, storage: .int32(bq))
        g.constants[bsName] = try Tensor(
          shape: channels == 1 ? [] : [bf.count], floats: channels == 1 ? [bScales[0]] : bScales)
        newNodes.append(
          Node(
            name: fresh("\(n.inputs[bi])_DequantizeLinear"), opType: "DequantizeLinear", inputs: [bqName, bsName],
            outputs: [bdName], attributes: channels == 1 ? [:] : ["axis": .int(0)]))
        n.inputs[bi] = bdName
        note = "bias int32"
      }
      n.inputs[0] = a.name
      n.inputs[1] = wd
      g.nodes[index] = n
      let zerosBefore = wf.filter { $0 == 0 }.count, zerosAfter = q.filter { $0 == 0 }.count
      let (lo, hi) = ranges[graph.nodes[index].inputs[0]]!
      report.layers.append(
        QuantizeReport.Layer(
          name: n.name.isEmpty ? n.label : n.name, op: n.opType, inputRange: [lo, hi], inputScale: a.scale,
          inputZeroPoint: Int(a.zero), weightScales: channels, weightScaleRange: [scales.min()!, scales.max()!],
          zerosBefore: zerosBefore, zerosAfter: zerosAfter, weights: wf.count, note: note))
    }
    // The new nodes read a graph input, a constant or a node's output: restore a topological order.
    g.nodes = ordered(newNodes + g.nodes, inputs: Set(g.inputs.map(\.name)), constants: Set(g.constants.keys))
    // The float weights and biases the layers read before are gone from the file.
    let used = Set(g.nodes.flatMap(\.inputs)).union(g.outputs.map(\.name))
    for name in g.constants.keys where !used.contains(name) && !graph.outputs.contains(where: { $0.name == name }) {
      g.constants[name] = nil
    }
    if g.opset < 10 { g.opset = 10 }
    return (g, report)
  }

  /// Scale and zero point mapping [min(lo, 0), max(hi, 0)] onto the type's range.
  static func activationParams(lo: Float, hi: Float, type: DType) -> (Float, Int32) {
    let rmin = min(lo, 0), rmax = max(hi, 0)
    if type == .int8 {
      let m = max(abs(rmin), abs(rmax))
      return (m > 0 ? m / 127 : 1, 0)
    }
    let scale = rmax > rmin ? (rmax - rmin) / 255 : 1
    let zero = Int32(min(max((-rmin / scale).rounded(.toNearestOrEven), 0), 255))
    return (scale, zero)
  }

  /// Runs the float model on every calibration input and returns each activation's range.
  static func calibrate(
    _ graph: Graph, activations: [String], inputs: [[String: Tensor]], options o: QuantizeOptions
  ) throws -> [String: (Float, Float)] {
    var lo = [String: Float](), hi = [String: Float](), samples = [String: [Float]]()
    var seen = [String: Int]()
    var seed: UInt64 = 0x5EED
    try CalibrationRuns.collect(
      graph, values: activations, inputs: inputs,
      missing: QuantizeError.notComputed
    ) { a, t in
      let f = t.floats.filter { !$0.isNaN }
      if let mn = f.min(), let mx = f.max() {
        lo[a] = min(lo[a] ?? mn, mn)
        hi[a] = max(hi[a] ?? mx, mx)
      }
      if case .percentile = o.method {
        var kept = samples[a] ?? []
        var count = seen[a] ?? 0
        for v in f {
          count += 1
          if kept.count < o.sampleLimit {
            kept.append(v)
          } else {
            // Reservoir sampling (seeded): the i-th value seen replaces a kept one with
            // probability limit / i, so every value seen is kept with the same chance.
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let j = Int((seed >> 11) % UInt64(count))
            if j < o.sampleLimit { kept[j] = v }
          }
        }
        samples[a] = kept
        seen[a] = count
      }
    }
    var ranges: [String: (Float, Float)] = [:]
    for a in activations {
      switch o.method {
      case .minMax:
        ranges[a] = (lo[a] ?? 0, hi[a] ?? 0)
      case .percentile(let p):
        let s = (samples[a] ?? []).sorted()
        guard !s.isEmpty else {
          ranges[a] = (0, 0)
          continue
        }
        func at(_ q: Double) -> Float { s[min(s.count - 1, max(0, Int((q / 100 * Double(s.count - 1)).rounded())))] }
        ranges[a] = (at(100 - p), at(p))
      }
    }
    return ranges
  }

  /// Nodes in an order where every input is produced before it is read (Kahn's algorithm, stable).
  static func ordered(_ nodes: [Node], inputs: Set<String>, constants: Set<String>) -> [Node] {
    var available = inputs.union(constants)
    var pending = nodes
    var out: [Node] = []
    while !pending.isEmpty {
      guard let i = pending.firstIndex(where: { $0.inputs.allSatisfy { $0.isEmpty || available.contains($0) } }) else {
        return out + pending  // a cycle or an unknown input: the importer reports it
      }
      let n = pending.remove(at: i)
      out.append(n)
      available.formUnion(n.outputs)
    }
    return out
  }
}

extension Float {
  fileprivate func clamped(_ lo: Float, _ hi: Float) -> Float { Swift.min(Swift.max(self, lo), hi) }
}
