import Testing

@testable import Sparrow

/// The runtime-pruning gate (issue #6) against references that do not use it: `zero` equals
/// the ungated run; `topk:R` equals the ungated run on an input whose other channels are zeroed;
/// learned gates in `model` mode equal the model's own multiply (unoptimised graph).
@Suite struct GateTests {
  @Test func parsesModes() throws {
    #expect(try GateMode(parsing: "off") == .off)
    #expect(try GateMode(parsing: "zero") == .zero)
    #expect(try GateMode(parsing: "model") == .model)
    #expect(try GateMode(parsing: "topk:0.5") == .topk(0.5))
    #expect(try GateMode(parsing: "topk:25%") == .topk(0.25))
    for bad in ["topk:0", "topk:1.5", "topk:x", "topk:"] {
      expectError(GateError.self, containing: "the kept fraction R must be", bad) { _ = try GateMode(parsing: bad) }
    }
    expectError(GateError.self, containing: "unknown gate 'sometimes'") { _ = try GateMode(parsing: "sometimes") }
  }

  /// One convolution `m x c x k x k` on a 2-image batch; every groups=1 conv gated.
  static func conv(c: Int, m: Int, k: Int, zeros: Double, seed: UInt64, images: Int = 2) throws -> Graph {
    var rng = SeededRNG(seed: seed)
    let w = (0..<(m * c * k * k)).map { _ in Double.random(in: 0..<1, using: &rng) < zeros ? 0 : rng.float() }
    return Graph(
      inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(images), .fixed(c), .fixed(7), .fixed(6)])],
      outputs: [ValueInfo(name: "y")],
      nodes: [
        Node(
          name: "conv", opType: "Conv", inputs: ["x", "w", "b"], outputs: ["y"],
          attributes: ["pads": .ints(Array(repeating: Int64(k / 2), count: 4))])
      ],
      constants: [
        "w": try Tensor(shape: [m, c, k, k], floats: w),
        "b": try Tensor(shape: [m], floats: (0..<m).map { _ in rng.float() }),
      ], opset: 13)
  }

  static func run(
    _ g: Graph, _ x: Tensor, format: FormatPolicy, gate: GateMode, optimize: Bool = true, conv: ConvAlgorithm = .measure,
    threads: Int = 1
  ) throws -> (Tensor, GateLog) {
    var o = PlanOptions(threads: threads, format: format, formatCache: nil)
    o.gateLayers = .all
    o.convAlgorithm = conv
    let model = try Model(graph: g, optimize: optimize, options: o)
    let s = Session(plan: try model.plan(shapes: [:]))
    s.gate = gate
    let out = try s.run(["x": x])
    return (out["y"]!, s.gateLog)
  }

  static let formats: [FormatPolicy] = [.fixed(.dense), .fixed(.csr), .fixed(.bsr), .fixed(.nm), .fixed(.channel), .auto]

  static func close(_ a: Tensor, _ b: Tensor) -> Bool {
    let (x, y) = (a.floats, b.floats)
    let scale = max(y.map(abs).max() ?? 0, 1e-6)
    return a.shape == b.shape && zip(x, y).allSatisfy { abs($0 - $1) <= 2e-5 * scale }
  }

  /// Input whose image 0 has channels `zero0` exactly zero, image 1 channels `zero1`.
  static func input(c: Int, zero0: Set<Int>, zero1: Set<Int>, seed: UInt64) throws -> Tensor {
    var rng = SeededRNG(seed: seed)
    var v: [Float] = []
    for img in 0..<2 {
      for ch in 0..<c {
        let dead = (img == 0 ? zero0 : zero1).contains(ch)
        for _ in 0..<42 { v.append(dead ? 0 : rng.float()) }
      }
    }
    return try Tensor(shape: [2, c, 7, 6], floats: v)
  }

  @Test(arguments: [(1, 0.0), (3, 0.0), (3, 0.5), (1, 0.9), (3, 0.9)])
  func zeroSkipsExactlyTheZeroChannels(k: Int, zeros: Double) throws {
    let (c, m) = (9, 6)
    let g = try Self.conv(c: c, m: m, k: k, zeros: zeros, seed: UInt64(k * 10) + UInt64(zeros * 10))
    let x = try Self.input(c: c, zero0: [0, 3, 4], zero1: [8], seed: 3)
    for f in Self.formats {
      let (ref, _) = try Self.run(g, x, format: f, gate: .off)
      // 2 threads: the batch's two images run at once, one on each thread (`GatedStep.workers`).
      for threads in [1, 2] {
        let (got, log) = try Self.run(g, x, format: f, gate: .zero, threads: threads)
        #expect(Self.close(got, ref), "format \(f), k \(k), zeros \(zeros), \(threads) threads")
        #expect(log.layers.count == 1)
        #expect(log.layers.first?.skippedInputs == 4, "3 channels of image 0 and 1 of image 1")
        #expect(log.layers.first?.images == 2)
      }
    }
    if k == 3, zeros >= 0.5 {
      // The direct sparse convolution (no im2col) takes the same lists.
      let (ref, _) = try Self.run(g, x, format: .auto, gate: .off, conv: .im2col)
      let (got, log) = try Self.run(g, x, format: .auto, gate: .zero, conv: .direct)
      #expect(Self.close(got, ref), "direct, zeros \(zeros)")
      #expect(log.layers.first?.skippedInputs == 4)
    }
    // Every channel zero: the output is the bias (after any clamp).
    let zero = try Self.input(c: c, zero0: Set(0..<c), zero1: Set(0..<c), seed: 3)
    let (ref, _) = try Self.run(g, zero, format: .fixed(.dense), gate: .off)
    let (got, _) = try Self.run(g, zero, format: .fixed(.csr), gate: .zero)
    #expect(Self.close(got, ref))
  }

  /// Five images on 2 and 3 threads: the gated step's workers take every other (third) image, an
  /// uneven split; each image's skips equal its own zero channels, the log counts every image.
  @Test func imagesSpreadOverThreadsUnevenly() throws {
    let (c, m) = (9, 20)
    let g = try Self.conv(c: c, m: m, k: 3, zeros: 0, seed: 41, images: 5)
    var rng = SeededRNG(seed: 42)
    var v: [Float] = []
    var zeroChannels = 0
    for img in 0..<5 {
      for ch in 0..<c {
        let dead = (ch + img) % 4 == 0
        if dead { zeroChannels += 1 }
        for _ in 0..<42 { v.append(dead ? 0 : rng.float()) }
      }
    }
    let x = try Tensor(shape: [5, c, 7, 6], floats: v)
    let (ref, _) = try Self.run(g, x, format: .fixed(.dense), gate: .off)
    for threads in [2, 3] {
      for f in [FormatPolicy.fixed(.dense), .fixed(.csr), .auto] {
        let (got, log) = try Self.run(g, x, format: f, gate: .zero, threads: threads)
        #expect(Self.close(got, ref), "\(f), \(threads) threads")
        #expect(log.layers.first?.images == 5)
        #expect(log.layers.first?.skippedInputs == zeroChannels)
      }
    }
  }

  @Test(arguments: [1, 3])
  func topkEqualsTheLayerOnTheKeptChannels(k: Int) throws {
    let (c, m) = (8, 5)
    let g = try Self.conv(c: c, m: m, k: k, zeros: 0.5, seed: 77)
    // Channel ch of image img scaled so the saliency order is known: kept = largest scales.
    var rng = SeededRNG(seed: 9)
    let scale0: [Float] = [0.1, 3, 0.2, 5, 0.3, 4, 0.4, 2]  // top half: 3, 5, 1, 7
    let scale1: [Float] = [6, 0.1, 7, 0.2, 8, 0.3, 9, 0.4]  // top half: 6, 4, 2, 0
    var v: [Float] = [], masked: [Float] = []
    for img in 0..<2 {
      let s = img == 0 ? scale0 : scale1
      let kept: Set<Int> = img == 0 ? [3, 5, 1, 7] : [6, 4, 2, 0]
      for ch in 0..<c {
        for _ in 0..<42 {
          let a = (0.5 + abs(rng.float())) * s[ch]
          v.append(a)
          masked.append(kept.contains(ch) ? a : 0)
        }
      }
    }
    let x = try Tensor(shape: [2, c, 7, 6], floats: v), xm = try Tensor(shape: [2, c, 7, 6], floats: masked)
    for f in Self.formats {
      let (ref, _) = try Self.run(g, xm, format: f, gate: .off)
      let (got, log) = try Self.run(g, x, format: f, gate: .topk(0.5))
      #expect(Self.close(got, ref), "format \(f)")
      #expect(log.layers.first?.skippedInputs == 8)
      let (all, _) = try Self.run(g, x, format: f, gate: .topk(1))
      let (off, _) = try Self.run(g, x, format: f, gate: .off)
      #expect(Self.close(all, off), "topk:1 keeps everything")
    }
  }

  /// conv1 → Relu → Mul(g) → conv2 (+ the gated value as a second output), `g` a run-time input.
  /// `sparse`: conv1 has 60% zeros and conv2 is 3×3 (so both can run as direct convolutions).
  static func learned(gateShape: [Int], sparse: Bool = false) throws -> Graph {
    var rng = SeededRNG(seed: 123)
    let k2 = sparse ? 3 : 1
    let (c, m, o) = (4, 6, 5)
    return Graph(
      inputs: [
        ValueInfo(name: "x", dtype: .float32, shape: [.fixed(2), .fixed(c), .fixed(5), .fixed(5)]),
        ValueInfo(name: "g", dtype: .float32, shape: gateShape.map { .fixed($0) }),
      ],
      outputs: [ValueInfo(name: "y"), ValueInfo(name: "h")],
      nodes: [
        Node(name: "conv1", opType: "Conv", inputs: ["x", "w1", "b1"], outputs: ["a"], attributes: ["pads": .ints([1, 1, 1, 1])]),
        Node(name: "relu", opType: "Relu", inputs: ["a"], outputs: ["r"]),
        Node(name: "gate", opType: "Mul", inputs: ["r", "g"], outputs: ["h"]),
        Node(
          name: "conv2", opType: "Conv", inputs: ["h", "w2"], outputs: ["y"],
          attributes: ["pads": .ints(Array(repeating: Int64(k2 / 2), count: 4))]),
      ],
      constants: [
        "w1": try Tensor(
          shape: [m, c, 3, 3],
          floats: (0..<(m * c * 9)).map { _ in sparse && Double.random(in: 0..<1, using: &rng) < 0.6 ? 0 : rng.float() }),
        "b1": try Tensor(shape: [m], floats: (0..<m).map { _ in rng.float() }),
        "w2": try Tensor(
          shape: [o, m, k2, k2],
          floats: (0..<(o * m * k2 * k2)).map { _ in sparse && Double.random(in: 0..<1, using: &rng) < 0.6 ? 0 : rng.float() }),
      ], opset: 13)
  }

  @Test(arguments: [[2, 6, 1, 1], [1, 6, 1, 1]])
  func learnedGatesSkipWhatTheMaskZeroes(gateShape: [Int]) throws {
    let g = try Self.learned(gateShape: gateShape)
    var rng = SeededRNG(seed: 4)
    let x = try Tensor(shape: [2, 4, 5, 5], floats: (0..<200).map { _ in rng.float() })
    let gv: [Float] = gateShape[0] == 2 ? [0, 1.5, 0, 0.5, 2, 0, 0.7, 0, 0, 0, 1, 3] : [0, 1.5, 0, 0.5, 2, 0]
    let gate = try Tensor(shape: gateShape, floats: gv)
    let zeros = gv.filter { $0 == 0 }.count * (gateShape[0] == 2 ? 1 : 2)
    // The reference: unoptimised, so the Relu and the Mul run as their own steps.
    let ref = try Model(graph: g, optimize: false, options: PlanOptions(threads: 1, format: .fixed(.dense), formatCache: nil))
      .run(["x": x, "g": gate])
    for f in Self.formats {
      for (mode, threads) in [(GateMode.off, 1), (.model, 1), (.zero, 1), (.off, 2), (.model, 2)] {
        let model = try Model(graph: g, options: PlanOptions(threads: threads, format: f, formatCache: nil))
        let plan = try model.plan(shapes: [:])
        #expect(plan.steps.count == 2, "the Relu and the Mul are part of conv1")
        #expect(plan.steps.map { ($0.step as? GatedStep)?.workers } == [threads, threads], "one image per thread")
        #expect(plan.layers.map(\.gate) == ["learned-out", "learned-in"])
        let s = Session(plan: plan)
        s.gate = mode
        let out = try s.run(["x": x, "g": gate])
        #expect(Self.close(out["y"]!, ref["y"]!), "\(f) \(mode) \(threads) threads")
        #expect(Self.close(out["h"]!, ref["h"]!), "the gated value is the model's multiply")
        let hz = zip(out["h"]!.floats, ref["h"]!.floats).filter { ($0 == 0) != ($1 == 0) }.count
        #expect(hz == 0, "zeros exactly where the model's multiply writes them")
        let skipped = mode == .model ? zeros : 0
        #expect(s.gateLog.layers.map(\.skippedOutputs) == [skipped, 0])
        #expect(s.gateLog.layers.map(\.skippedInputs) == [0, skipped])
      }
    }
  }

  @Test func learnedGateFusionWritesATypedFusedNode() throws {
    let opt = try Passes.optimize(try Self.learned(gateShape: [2, 6, 1, 1]))
    #expect(opt.nodes.map(\.name) == ["conv1", "conv2"])
    #expect(opt.nodes[0].epilogue == FusedEpilogue(clamp: 0...Float.infinity, learnedGate: 3))
    #expect(opt.nodes[0].inputs == ["x", "w1", "b1", "g"])
    #expect(opt.nodes[0].outputs == ["h"])
    expectError(ModelError.self, containing: "carries an epilogue") { _ = try ONNXExporter.encode(opt) }
  }

  /// A multiply by a whole feature map (not a per-channel gate) is fused by the pass, which
  /// cannot see shapes, and planned as the convolution and the Mul again.
  @Test func aMultiplyThatIsNoGateRunsAsTheModelSays() throws {
    let g = try Self.learned(gateShape: [2, 6, 5, 5])
    var rng = SeededRNG(seed: 9)
    let x = try Tensor(shape: [2, 4, 5, 5], floats: (0..<200).map { _ in rng.float() })
    let gate = try Tensor(shape: [2, 6, 5, 5], floats: (0..<300).map { _ in rng.float() })
    let ref = try Model(graph: g, optimize: false, options: PlanOptions(threads: 1, format: .fixed(.dense), formatCache: nil))
      .run(["x": x, "g": gate])
    let plan = try Model(graph: g, options: PlanOptions(threads: 1, format: .fixed(.dense), formatCache: nil)).plan()
    #expect(plan.stepNodes.map(\.op) == ["Conv", "Mul", "Conv"])
    #expect(plan.layers.map(\.gate) == [nil, nil])
    let s = Session(plan: plan)
    s.gate = .model
    let out = try s.run(["x": x, "g": gate])
    #expect(Self.close(out["y"]!, ref["y"]!))
    #expect(Self.close(out["h"]!, ref["h"]!))
  }

  @Test func learnedGatesOnDirectConvolutions() throws {
    let g = try Self.learned(gateShape: [2, 6, 1, 1], sparse: true)
    var rng = SeededRNG(seed: 6)
    let x = try Tensor(shape: [2, 4, 5, 5], floats: (0..<200).map { _ in rng.float() })
    let gv: [Float] = [0, 1.5, 0, 0.5, 2, 0, 0.7, 0, 0, 0, 1, 3]
    let gate = try Tensor(shape: [2, 6, 1, 1], floats: gv)
    let ref = try Model(graph: g, optimize: false, options: PlanOptions(threads: 1, format: .fixed(.dense), formatCache: nil))
      .run(["x": x, "g": gate])
    for (mode, threads) in [(GateMode.off, 1), (.model, 1), (.model, 2)] {
      var o = PlanOptions(threads: threads, formatCache: nil)
      o.convAlgorithm = .direct
      let plan = try Model(graph: g, options: o).plan(shapes: [:])
      #expect(plan.layers.map(\.format) == ["direct", "direct"])
      #expect(plan.layers.map(\.gate) == ["learned-out", "learned-in"])
      let s = Session(plan: plan)
      s.gate = mode
      let out = try s.run(["x": x, "g": gate])
      #expect(Self.close(out["y"]!, ref["y"]!), "\(mode)")
      #expect(Self.close(out["h"]!, ref["h"]!), "\(mode)")
      #expect(s.gateLog.layers.map(\.skippedOutputs) == [mode == .model ? 6 : 0, 0])
      #expect(s.gateLog.layers.map(\.skippedInputs) == [0, mode == .model ? 6 : 0])
    }
  }

  @Test func unknownGateLayersAreRefused() throws {
    var o = PlanOptions(threads: 1, formatCache: nil)
    o.gateLayers = .named(["conv", "nope"])
    let g = try Self.conv(c: 3, m: 2, k: 1, zeros: 0, seed: 1)
    expectError(ModelError.self, containing: "'nope' is not a layer the gate can skip (a convolution with groups = 1 or a MatMul/Gemm") {
      _ = try Model(graph: g, options: o).plan(shapes: [:])
    }
    o.gateLayers = .named(["conv"])
    #expect(try Model(graph: g, options: o).plan(shapes: [:]).layers.first?.gate == "zero/topk")
  }

  @Test func gateNotFusedWhenTheConvHasAnotherReader() throws {
    var g = try Self.learned(gateShape: [2, 6, 1, 1])
    g.outputs.append(ValueInfo(name: "r"))
    let plan = try Model(graph: g, options: PlanOptions(threads: 1, formatCache: nil)).plan(shapes: [:])
    #expect(plan.layers.allSatisfy { $0.gate == nil })
  }
}

/// TopK and the comparisons against plain references.
@Suite struct TopKCompareTests {
  static func graph(_ node: Node, inputs: [(String, [Int], DType)], constants: [String: Tensor] = [:], outputs: [String])
    -> Graph
  {
    Graph(
      inputs: inputs.map { ValueInfo(name: $0.0, dtype: $0.2, shape: $0.1.map { .fixed($0) }) },
      outputs: outputs.map { ValueInfo(name: $0) }, nodes: [node], constants: constants, opset: 13)
  }

  @Test(arguments: [(1, 1), (1, 0), (2, 1), (2, 0)])
  func topk(axis: Int, largest: Int) throws {
    var rng = SeededRNG(seed: UInt64(axis * 2 + largest))
    let shape = [2, 7, 3]
    // Values from a small set, so ties are common: ties go to the lower index.
    let v = (0..<42).map { _ in Float(Int.random(in: -3...3, using: &rng)) / 2 }
    let k = axis == 1 ? 4 : 2
    let node = Node(
      name: "topk", opType: "TopK", inputs: ["x", "k"], outputs: ["v", "i"],
      attributes: ["axis": .int(Int64(axis)), "largest": .int(Int64(largest))])
    let g = Self.graph(
      node, inputs: [("x", shape, .float32)], constants: ["k": try Tensor(shape: [1], storage: .int64([Int64(k)]))],
      outputs: ["v", "i"])
    let out = try Model(graph: g).run(["x": try Tensor(shape: shape, floats: v)])
    var outShape = shape
    outShape[axis] = k
    #expect(out["v"]!.shape == outShape)
    let got = out["v"]!.floats, idx = out["i"]!.int64s
    let strides = [21, 3, 1]
    let len = shape[axis], stride = strides[axis]
    for a in 0..<2 {
      for b in 0..<(axis == 1 ? 3 : 7) {
        let base = axis == 1 ? a * 21 + b : a * 21 + b * 3
        let obase = axis == 1 ? a * outShape[1] * 3 + b : a * 7 * k + b * k
        let ostride = axis == 1 ? 3 : 1
        let order = (0..<len).sorted { i, j in
          let (x, y) = (v[base + i * stride], v[base + j * stride])
          return x != y ? (largest == 1 ? x > y : x < y) : i < j
        }
        for r in 0..<k {
          #expect(idx[obase + r * ostride] == Int64(order[r]))
          #expect(got[obase + r * ostride] == v[base + order[r] * stride])
        }
      }
    }
  }

  @Test func topkRefusesAKOutsideTheAxis() throws {
    let node = Node(name: "topk", opType: "TopK", inputs: ["x", "k"], outputs: ["v", "i"])
    let g = Self.graph(
      node, inputs: [("x", [2, 3], .float32)], constants: ["k": try Tensor(shape: [1], storage: .int64([4]))], outputs: ["v"])
    expectError(ModelError.self, containing: "K = 4 is outside 0...3") { _ = try Model(graph: g).plan() }
  }

  @Test(arguments: ["Equal", "Greater", "GreaterOrEqual", "Less", "LessOrEqual"])
  func compare(op: String) throws {
    var rng = SeededRNG(seed: 8)
    let a = (0..<12).map { _ in Float(Int.random(in: -2...2, using: &rng)) }
    let b = (0..<3).map { _ in Float(Int.random(in: -2...2, using: &rng)) }
    let g = Self.graph(
      Node(name: "cmp", opType: op, inputs: ["a", "b"], outputs: ["y"]),
      inputs: [("a", [4, 3], .float32), ("b", [3], .float32)], outputs: ["y"])
    let y = try Model(graph: g).run(["a": try Tensor(shape: [4, 3], floats: a), "b": try Tensor(shape: [3], floats: b)])["y"]!
    #expect(y.dtype == .bool)
    let f: (Float, Float) -> Bool
    switch op {
    case "Equal": f = { $0 == $1 }
    case "Greater": f = { $0 > $1 }
    case "GreaterOrEqual": f = { $0 >= $1 }
    case "Less": f = { $0 < $1 }
    default: f = { $0 <= $1 }
    }
    #expect(y.floats == (0..<12).map { f(a[$0], b[$0 % 3]) ? 1 : 0 })
  }
}

@Suite struct ChannelSelectTests {
  @Test func nonZeroChannelsSeesNaNAndIgnoresNegativeZero() {
    let hw = 13  // one SIMD block and a tail
    var x = [Float](repeating: 0, count: 5 * hw)
    x[1 * hw + 12] = 0.5  // in the tail
    x[2 * hw + 3] = .nan
    x[3 * hw + 7] = -0.0
    x[4 * hw] = -1e-30
    var list = [UInt32](repeating: 99, count: 5)
    let n = x.withUnsafeBufferPointer { xb in
      list.withUnsafeMutableBufferPointer { ChannelSelect.nonZeroChannels(xb.baseAddress!, channels: 5, hw: hw, into: $0.baseAddress!) }
    }
    #expect(Array(list[0..<n]) == [1, 2, 4])
  }

  @Test func topKeepsTheLargestWithTiesToTheLowerIndex() {
    let sums: [Float] = [3, 1, 3, 0, 5, 3, .nan, 2]
    var tmp = [Float](repeating: 0, count: 8)
    var list = [UInt32](repeating: 0, count: 8)
    func top(_ keep: Int) -> [UInt32] {
      let n = sums.withUnsafeBufferPointer { s in
        tmp.withUnsafeMutableBufferPointer { t in
          list.withUnsafeMutableBufferPointer {
            ChannelSelect.top(s.baseAddress!, channels: 8, keep: keep, tmp: t.baseAddress!, into: $0.baseAddress!)
          }
        }
      }
      return Array(list[0..<n])
    }
    #expect(top(1) == [6])  // NaN ranks first
    #expect(top(3) == [0, 4, 6])  // 5, then the first of the three 3s
    #expect(top(5) == [0, 2, 4, 5, 6])
    #expect(top(8) == [0, 1, 2, 4, 5, 6, 7])  // all but the exactly-zero channel
  }
}
