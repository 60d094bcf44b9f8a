import Foundation
import Testing

@testable import Sparrow

/// The dependency graph on whole models: the tiny transformer's heads and MLP neurons, and a
/// modern CNN block (GELU as Erf, ReduceMean channel norm, depthwise, residual, SE). The shrunk
/// model must compute what the in-place model computes (Sparrow's executor on both), except
/// where a channel norm is shrunk, which the report must say.
@Suite struct PruneDepGraphTests {
  static let transformer = ModelFiles.root.appendingPathComponent("transformer/encoder_opset17_layernorm_erf")
  static let cnn = ModelFiles.root.appendingPathComponent("pruning/modern_cnn")

  static func options(onlyShrinkable: Bool, skipFirstLast: Bool = false, shrink: Bool) -> PruneOptions {
    var o = PruneOptions(method: .channelL1, sparsity: 0.5)
    o.skipFirstLast = skipFirstLast
    o.onlyShrinkable = onlyShrinkable
    o.shrink = shrink
    return o
  }

  static func inputs(_ dir: URL, _ names: [String]) throws -> [String: Tensor] {
    var out: [String: Tensor] = [:]
    for (i, n) in names.enumerated() {
      out[n] = try NPY.read(contentsOf: dir.appendingPathComponent("input_\(i)_\(n).npy"))
    }
    return out
  }

  static func close(_ a: [String: Tensor], _ b: [String: Tensor]) -> Bool {
    a.keys.allSatisfy { k in
      guard let x = a[k], let y = b[k], x.shape == y.shape else { return false }
      let bound = 1e-4 * (x.floats.map { abs($0) }.max() ?? 0)
      return zip(x.floats, y.floats).allSatisfy { abs($0 - $1) <= bound }
    }
  }

  @Test func transformerHeadsAndNeuronsShrinkToTheInPlaceModel() throws {
    let g = try ONNXImporter.load(contentsOf: Self.transformer.appendingPathExtension("onnx"))
    let a = ChannelAnalysis.analyse(FoldConstantReshapes.run(g))
    // The heads group of layer 0: Q, K, V make it in whole heads of 8, two Reshapes carry the count.
    let q = try #require(g.nodes.firstIndex { $0.inputs.contains("l0_wq") })
    let heads = try #require(a.groups.first { $0.producers.contains(q) })
    #expect(heads.channels == 2 && heads.blocked == nil && heads.producers.count == 3)
    #expect(heads.unit(ofProducer: q) == 8)
    // Shape entries: the Q, K and V splits and the merge.
    #expect(heads.roles.filter { if case .shapeEntry = $0 { return true } else { return false } }.count == 4)
    let w1 = try #require(g.nodes.firstIndex { $0.inputs.contains("l0_w1") })
    let mlp = try #require(a.groups.first { $0.producers.contains(w1) })
    #expect(mlp.channels == 32 && mlp.blocked == nil && mlp.unit(ofProducer: w1) == 1)
    let wo = try #require(g.nodes.firstIndex { $0.inputs.contains("l0_wo") })
    #expect(a.groups.first { $0.producers.contains(wo) }?.blocked?.contains("residual stream") == true)

    let (inPlace, _) = try Pruner.prune(g, Self.options(onlyShrinkable: true, shrink: false))
    let (shrunk, report) = try Pruner.prune(g, Self.options(onlyShrinkable: true, shrink: true))
    #expect(report.notes.isEmpty, "\(report.notes)")
    func weight(_ name: String) -> [Int]? {
      shrunk.nodes.first { $0.inputs.first == name || $0.outputs.first == name }.flatMap { n in
        n.inputs.count > 1 ? shrunk.constants[n.inputs[1]]?.shape : nil
      }
    }
    for l in ["l0", "l1"] {
      #expect(weight("\(l)_q_mm") == [16, 8])
      #expect(weight("\(l)_o_mm") == [8, 16])
      #expect(weight("\(l)_f1_mm") == [16, 16])
      #expect(weight("\(l)_f2_mm") == [16, 16])
    }
    let x = try Self.inputs(Self.transformer, ["input_ids", "attention_mask"])
    #expect(Self.close(try Model(graph: inPlace).run(x), try Model(graph: shrunk).run(x)))
  }

  @Test func modernCNNShrinksAndReportsTheChannelNorm() throws {
    let g = try ONNXImporter.load(contentsOf: Self.cnn.appendingPathExtension("onnx"))
    let x = try Self.inputs(Self.cnn, ["X"])
    // The stem's group holds the channel norm; left dense with the first layer, the rest is exact.
    let (inPlace, _) = try Pruner.prune(g, Self.options(onlyShrinkable: false, skipFirstLast: true, shrink: false))
    let (shrunk, report) = try Pruner.prune(g, Self.options(onlyShrinkable: false, skipFirstLast: true, shrink: true))
    #expect(report.notes.isEmpty, "\(report.notes)")
    #expect(report.layers.filter { $0.newShape != nil }.count >= 5)
    #expect(Self.close(try Model(graph: inPlace).run(x), try Model(graph: shrunk).run(x)))
    // Every layer: the norm's group shrinks too, and the report says the function changed.
    let (_, all) = try Pruner.prune(g, Self.options(onlyShrinkable: false, shrink: true))
    #expect(all.notes.contains { $0.contains("function changed") && $0.contains("ReduceMean") }, "\(all.notes)")
    #expect(!all.notes.contains { $0.hasPrefix("not shrunk") }, "\(all.notes)")
  }
}
