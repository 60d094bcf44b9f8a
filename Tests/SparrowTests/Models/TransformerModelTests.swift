import Foundation
import Testing

@testable import Sparrow

/// The transformer op models and the small seeded transformers of Models/transformer (made by
/// Models/scripts/make_transformer_models.py with onnx.helper) against ONNX Runtime's saved
/// outputs, `max|got - ref| <= 1e-4 · max|ref|` (integer and bool outputs exactly), as raw graphs
/// on 1 thread and after the passes (LayerNorm and GELU fusion) on 2.
@Suite struct TransformerModelTests {
  static let dir = ModelFiles.root.appendingPathComponent("transformer")
  static let models: [ModelFiles.Entry] = {
    guard let data = try? Data(contentsOf: dir.appendingPathComponent("manifest.json")),
      let m = try? JSONDecoder().decode(ModelFiles.Manifest.self, from: data)
    else { return [] }
    return m.models
  }()

  static func load(_ name: String) throws -> Graph {
    try ONNXImporter.load(contentsOf: dir.appendingPathComponent("\(name).onnx"))
  }

  static func inputs(_ e: ModelFiles.Entry) throws -> [String: Tensor] {
    var inputs: [String: Tensor] = [:]
    for i in e.inputs { inputs[i.name] = try NPY.read(contentsOf: dir.appendingPathComponent(i.file)) }
    return inputs
  }

  @Test func manifestIsPresentAndEveryOpIsSupported() throws {
    #expect(Self.models.count >= 35)
    for e in Self.models {
      let g = try Self.load(e.name)
      let missing = g.nodes.filter { !Planner.supports($0) }.map(\.opType)
      #expect(missing.isEmpty, "\(e.name): \(missing)")
    }
  }

  @Test(arguments: models) func matchesOnnxRuntime(_ e: ModelFiles.Entry) throws {
    try Self.check(e, threads: 1, optimize: false)
  }

  @Test(arguments: models) func matchesOnnxRuntimeOptimized(_ e: ModelFiles.Entry) throws {
    try Self.check(e, threads: 2, optimize: true)
  }

  /// The 2-layer encoders and the decoder block with every linear layer in each forced format
  /// (fused bias and GELU), against the same ORT references.
  @Test(arguments: models.filter { $0.name.hasPrefix("encoder") || $0.name.hasPrefix("decoder") }, WeightFormat.Kind.allCases)
  func encodersInEveryFormat(_ e: ModelFiles.Entry, _ format: WeightFormat.Kind) throws {
    try Self.check(e, threads: 2, optimize: true, format: format)
  }

  static func check(_ e: ModelFiles.Entry, threads: Int, optimize: Bool, format: WeightFormat.Kind? = nil) throws {
    var g = try load(e.name)
    if optimize { g = try Passes.optimize(g) }
    let inputs = try inputs(e)
    let plan = try Planner.plan(
      g, shapes: inputs.mapValues(\.shape), values: inputs,
      options: PlanOptions(threads: threads, format: format.map { .fixed($0) } ?? .auto, formatCache: nil))
    let got = try Session(plan: plan).run(inputs)
    for o in e.outputs {
      let ref = try NPY.read(contentsOf: dir.appendingPathComponent(o.file))
      guard let out = got[o.name] else {
        Issue.record("\(e.name): no output \(o.name)")
        continue
      }
      #expect(out.shape == ref.shape, "\(e.name) \(o.name): shape \(out.shape) vs \(ref.shape)")
      #expect(out.dtype == ref.dtype, "\(e.name) \(o.name): \(out.dtype) vs \(ref.dtype)")
      if ref.dtype != .float32 {
        #expect(out.int64s == ref.int64s, "\(e.name) \(o.name): integer/bool values differ")
        continue
      }
      let a = out.floats, b = ref.floats
      guard a.count == b.count else { continue }
      let scale = b.filter(\.isFinite).map { abs($0) }.max() ?? 0
      var worst: Float = 0
      for i in a.indices where b[i].isFinite { worst = max(worst, abs(a[i] - b[i])) }
      #expect(worst <= 1e-4 * max(scale, 1e-30) || (scale == 0 && worst == 0),
        "\(e.name) \(o.name): max|got-ref| = \(worst), bound \(1e-4 * scale)")
      for i in a.indices where !b[i].isFinite && !(a[i] == b[i] || (a[i].isNaN && b[i].isNaN)) {
        Issue.record("\(e.name) \(o.name)[\(i)]: \(a[i]) vs \(b[i])")
        break
      }
    }
  }

  /// The passes turn the decomposed LayerNorm and the Erf/Tanh GELU chains into single nodes; a
  /// Gelu after a linear layer's MatMul (+ bias) then becomes that MatMul's epilogue.
  @Test(arguments: [
    ("layernorm_decomposed_opset14", "LayerNormalization", 1),
    ("layernorm_decomposed_opset18", "LayerNormalization", 1),
    ("gelu_erf_pattern", "Gelu", 1), ("gelu_erf_pattern_halfx", "Gelu", 1), ("gelu_tanh_pattern", "Gelu", 1),
    ("encoder_opset14_decomposed_tanh", "LayerNormalization", 5), ("encoder_opset14_decomposed_tanh", "Gelu", 2),
    ("encoder_opset17_layernorm_erf", "Gelu", 2),
  ])
  func patternsAreFused(_ name: String, _ op: String, _ count: Int) throws {
    let g = try Passes.optimize(try Self.load(name))
    let fused = op == "Gelu" ? g.nodes.filter { $0.epilogue.gelu != nil }.count : 0
    #expect(g.nodes.filter { $0.opType == op }.count + fused == count, "\(g.nodes.map(\.opType))")
    #expect(!g.nodes.contains { ["Erf", "Tanh", "Pow", "Sqrt"].contains($0.opType) }, "\(g.nodes.map(\.opType))")
  }

  /// After the passes, each encoder layer's Q·Kᵀ → masked Softmax → P·V runs as one fused step
  /// (FusedAttentionStep, a head at a time): no Softmax step and no separate attention MatMul is
  /// left, and the outputs still equal ONNX Runtime's (`matchesOnnxRuntimeOptimized`, 2 threads,
  /// and here on 1 thread).
  @Test(arguments: models.filter { $0.name.hasPrefix("encoder_opset") && !$0.name.hasSuffix("_seq3") })
  func encoderAttentionIsFused(_ e: ModelFiles.Entry) throws {
    let g = try Passes.optimize(try Self.load(e.name))
    let inputs = try Self.inputs(e)
    let plan = try Planner.plan(
      g, shapes: inputs.mapValues(\.shape), values: inputs, options: PlanOptions(threads: 1, formatCache: nil))
    let fused = plan.steps.filter { $0.step is FusedAttentionStep }.count
    let softmax = plan.steps.filter { $0.step is MaskedSoftmaxStep || $0.step is SoftmaxStep }.count
    #expect(fused == 2 && softmax == 0, "\(e.name): \(fused) fused attention steps, \(softmax) softmax steps left")
    try Self.check(e, threads: 1, optimize: true)
  }

  /// On the sparse kernels each encoder layer's feed-forward pair (intermediate + GELU, output)
  /// passes its activation K-major (`LinearChain`): the intermediate keeps the kernels' layout
  /// and the output layer reads it transposed; Q, K and V share one transpose of their input;
  /// and the outputs still equal ONNX Runtime's. A
  /// value the graph also returns is not chained (it must be row-major). (A forced N:M format
  /// keeps these unpruned weights dense: OpenBLAS on rows, nothing to chain.)
  @Test(arguments: [WeightFormat.Kind.csr, .bsr])
  func feedForwardPairsPassTheirActivationKMajor(_ format: WeightFormat.Kind) throws {
    let e = try #require(Self.models.first { $0.name == "encoder_opset17_layernorm_erf" })
    var g = try Passes.optimize(try Self.load(e.name))
    let inputs = try Self.inputs(e)
    let options = PlanOptions(threads: 1, format: .fixed(format), formatCache: nil)
    let plan = try Planner.plan(g, shapes: inputs.mapValues(\.shape), values: inputs, options: options)
    let linears = plan.steps.compactMap { $0.step as? LinearStep }
    #expect(linears.filter(\.outputTransposed).count == 2, "\(linears.map(\.outputTransposed))")
    // Q, K and V of each layer read one shared K-major copy of their input (one transpose, not
    // three); with the two feed-forward output layers, 8 layers read A transposed.
    let shared = plan.steps.filter { $0.step is TransposeRowsStep }.count
    #expect(shared == 2, "\(shared) shared transposes")
    #expect(linears.filter(\.aTransposed).count == 8, "\(linears.map(\.aTransposed))")
    try Self.check(e, threads: 1, optimize: true, format: format)

    // The first intermediate also a graph output: that pair stays row-major, and the extra
    // output equals the same model's unchained value.
    let ffn = try #require(g.nodes.first { $0.opType == "MatMul" && $0.epilogue.gelu != nil })
    g.outputs.append(ValueInfo(name: ffn.outputs[0]))
    let plan2 = try Planner.plan(g, shapes: inputs.mapValues(\.shape), values: inputs, options: options)
    #expect(plan2.steps.compactMap { $0.step as? LinearStep }.filter(\.outputTransposed).count == 1)
    let got = try Session(plan: plan2).run(inputs)
    let hidden = try #require(got[ffn.outputs[0]])
    let rows = hidden.shape.dropLast().reduce(1, *), width = try #require(hidden.shape.last)
    // Row-major: the GELU of token 0's features, not of feature 0 over tokens.
    let one = try Planner.plan(g, shapes: inputs.mapValues(\.shape), values: inputs,
      options: PlanOptions(threads: 1, format: .fixed(.dense), formatCache: nil))
    let ref = try #require(try Session(plan: one).run(inputs)[ffn.outputs[0]])
    #expect(rows > 1 && width > rows)
    let worst = zip(hidden.floats, ref.floats).map { abs($0 - $1) }.max() ?? .infinity
    #expect(worst <= 1e-4 * (ref.floats.map(abs).max() ?? 0), "\(worst)")
  }

  /// One Model, plans per shape: the encoder at batch 2 x seq 7 (padded) and batch 1 x seq 3.
  @Test func encoderPlansPerShape() throws {
    let model = try Model(graph: try Self.load("encoder_opset17_layernorm_erf"), options: PlanOptions(threads: 1, formatCache: nil))
    for name in ["encoder_opset17_layernorm_erf", "encoder_opset17_layernorm_erf_seq3"] {
      let e = try #require(Self.models.first { $0.name == name })
      let got = try model.run(try Self.inputs(e))
      let ref = try NPY.read(contentsOf: Self.dir.appendingPathComponent(e.outputs[1].file))
      let out = try #require(got["sentence_embedding"])
      #expect(out.shape == ref.shape)
      let worst = zip(out.floats, ref.floats).map { abs($0 - $1) }.max() ?? 0
      #expect(worst <= 1e-4 * (ref.floats.map(abs).max() ?? 0), "\(name): \(worst)")
    }
  }

  // MARK: bad input

  @Test func tokenIdOutOfTheVocabularyIsAnErrorNamingTheNode() throws {
    let e = try #require(Self.models.first { $0.name == "encoder_opset17_layernorm_erf" })
    var inputs = try Self.inputs(e)
    let session = Session(plan: try Planner.plan(try Self.load(e.name), shapes: inputs.mapValues(\.shape)))
    for bad: Int64 in [50, -51, .max] {
      var ids = inputs["input_ids"]!.int64s
      ids[3] = bad
      inputs["input_ids"] = try Tensor(shape: [2, 7], storage: .int64(ids))
      do {
        _ = try session.run(inputs)
        Issue.record("id \(bad) ran")
      } catch {
        #expect(error.message.contains("Gather"), "\(error.message)")
        #expect(error.message.contains("out of range"), "\(error.message)")
      }
    }
  }

  @Test func maskOfTheWrongTypeOrShapeIsAnError() throws {
    let e = try #require(Self.models.first { $0.name == "encoder_opset17_layernorm_erf" })
    let inputs = try Self.inputs(e)
    let model = try Model(graph: try Self.load(e.name), options: PlanOptions(threads: 1, formatCache: nil))
    var floatMask = inputs
    floatMask["attention_mask"] = try Tensor(shape: [2, 7], floats: [Float](repeating: 1, count: 14))
    #expect(throws: (any Error).self) { try model.run(floatMask) }
    do {
      _ = try model.run(floatMask)
    } catch { #expect("\(error)".contains("attention_mask"), "\(error)") }
    var shortMask = inputs
    shortMask["attention_mask"] = try Tensor(shape: [2, 5], storage: .int64([Int64](repeating: 1, count: 10)))
    do {
      _ = try model.run(shortMask)
      Issue.record("a [2, 5] mask for [2, 7] ids ran")
    } catch {
      let text = "\(error)"
      #expect(text.contains("'") && !text.contains("\n"), "\(text)")
    }
  }

  @Test func unsupportedOpStillLoadsAndIsNamed() throws {
    var g = try Self.load("gelu_opset20")
    g.nodes[0].opType = "FancyAttention"
    #expect(!Planner.supports(g.nodes[0]))
    do {
      _ = try Planner.plan(g)
      Issue.record("planned an unsupported op")
    } catch { #expect(error.message.contains("FancyAttention"), "\(error.message)") }
  }

  @Test(arguments: ["bij,bjk", "...ij,...jk->...ik", "ii->i", "ij,jk,kl->il", "bij,bjk->bk", "bij,bkk->bik"])
  func unsupportedEinsumIsRefusedClearly(_ eq: String) throws {
    let x = ValueInfo(name: "A", dtype: .float32, shape: [.fixed(2), .fixed(3), .fixed(3)])
    let y = ValueInfo(name: "B", dtype: .float32, shape: [.fixed(2), .fixed(3), .fixed(3)])
    let g = Graph(
      inputs: [x, y], outputs: [ValueInfo(name: "Y")],
      nodes: [Node(name: "e", opType: "Einsum", inputs: ["A", "B"], outputs: ["Y"], attributes: ["equation": .string(eq)])],
      opset: 12)
    do {
      _ = try Planner.plan(g)
      Issue.record("planned '\(eq)'")
    } catch { #expect(error.message.contains("Einsum 'e'"), "\(error.message)") }
  }
}
