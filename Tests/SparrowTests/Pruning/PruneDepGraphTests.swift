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

  typealias F = PruneFixtures

  /// x[1,3,6,6] -> conv0 (3x3, `c0` filters, bias) -> `mid` nodes -> readers; `opset`.
  static func graph(
    _ nodes: [Node], _ constants: [String: Tensor], opset: Int = 13, output: String = "y"
  ) -> Graph {
    Graph(
      inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(1), .fixed(3), .fixed(6), .fixed(6)])],
      outputs: [ValueInfo(name: output)], nodes: nodes, constants: constants, opset: opset)
  }

  static func int64s(_ v: [Int64]) -> Tensor {
    do { return try Tensor(shape: [v.count], storage: .int64(v)) } catch { fatalError("fixture: \(error)") }
  }

  /// conv0 (8 filters) -> Relu -> Split [3, 5] -> convA (1x1) | convB (1x1) -> Add -> y.
  static func splitNet(rng: inout SeededRNG) -> Graph {
    func w(_ shape: [Int]) -> Tensor { F.tensor(shape, F.distinct(shape.reduce(1, *), rng: &rng)) }
    let pad1: [String: Attribute] = ["pads": .ints([1, 1, 1, 1])]
    return graph(
      [
        Node(name: "conv0", opType: "Conv", inputs: ["x", "w0", "b0"], outputs: ["c0"], attributes: pad1),
        Node(name: "relu", opType: "Relu", inputs: ["c0"], outputs: ["r0"]),
        Node(
          name: "split", opType: "Split", inputs: ["r0", "sizes"], outputs: ["sa", "sb"], attributes: ["axis": .int(1)]),
        Node(name: "convA", opType: "Conv", inputs: ["sa", "wA", "bA"], outputs: ["a"]),
        Node(name: "convB", opType: "Conv", inputs: ["sb", "wB", "bB"], outputs: ["b"]),
        Node(name: "add", opType: "Add", inputs: ["a", "b"], outputs: ["y"]),
      ],
      [
        "w0": w([8, 3, 3, 3]), "b0": w([8]), "sizes": int64s([3, 5]), "wA": w([4, 3, 1, 1]), "bA": w([4]),
        "wB": w([4, 5, 1, 1]), "bB": w([4]),
      ])
  }

  @Test func splitOutputsArePartsOfTheirInputsGroup() throws {
    var rng = SeededRNG(seed: 181)
    let g = Self.splitNet(rng: &rng)
    let a = ChannelAnalysis.analyse(g)
    let conv0 = try #require(g.nodes.firstIndex { $0.name == "conv0" })
    let parent = try #require(a.groups.firstIndex { $0.producers.contains(conv0) })
    #expect(a.isParent(parent) && a.slices.count == 2)
    #expect(a.slices.map(\.window) == [0..<3, 3..<8] && a.slices.allSatisfy { $0.parent == parent })
    #expect(a.slices.allSatisfy { a.groups[$0.group].blocked == nil })

    var o = F.options(.channelL1, 0.5)
    let (inPlace, _) = try Pruner.prune(g, o)
    o.shrink = true
    let (shrunk, report) = try Pruner.prune(g, o)
    #expect(report.notes.isEmpty, "\(report.notes)")
    // Each part ranks its own window of conv0's filters: round(0.5 * 3) = 2 and round(0.5 * 5) = 3 go
    // (the filter norms recomputed here).
    let l1 = F.l1(try #require(g.constants["w0"]))
    let goneA = F.smallest(Array(l1[0..<3]), 2), goneB = F.smallest(Array(l1[3..<8]), 3).map { $0 + 3 }
    #expect(F.zeroFilters(try #require(F.weight(inPlace, node: "conv0"))) == goneA + goneB)
    #expect(F.weight(shrunk, node: "conv0")?.shape == [3, 3, 3, 3])
    #expect(F.weight(shrunk, node: "convA")?.shape == [4, 1, 1, 1])
    #expect(F.weight(shrunk, node: "convB")?.shape == [4, 2, 1, 1])
    let split = try #require(shrunk.nodes.first { $0.name == "split" })
    #expect(shrunk.constants[split.inputs[1]]?.int64s == [1, 2])
    var xrng = SeededRNG(seed: 182)
    let x = F.tensor([1, 3, 6, 6], (0..<108).map { _ in Float.random(in: -1...1, using: &xrng) })
    #expect(Self.close(["y": try F.run(inPlace, x)], ["y": try F.run(shrunk, x)]))
  }

  @Test func slicesAlongTheChannelsFollowOrSayWhyNot() throws {
    var rng = SeededRNG(seed: 183)
    func w(_ shape: [Int]) -> Tensor { F.tensor(shape, F.distinct(shape.reduce(1, *), rng: &rng)) }
    func net(step: Int64) -> Graph {
      Self.graph(
        [
          Node(name: "conv0", opType: "Conv", inputs: ["x", "w0"], outputs: ["c0"]),
          Node(name: "relu", opType: "Relu", inputs: ["c0"], outputs: ["r0"]),
          Node(name: "lo", opType: "Slice", inputs: ["r0", "s0", "e0", "ax", "st"], outputs: ["xl"]),
          Node(name: "hi", opType: "Slice", inputs: ["r0", "s1", "e1", "ax"], outputs: ["xh"]),
          Node(name: "convL", opType: "Conv", inputs: ["xl", "wL"], outputs: ["l"]),
          Node(name: "convH", opType: "Conv", inputs: ["xh", "wH"], outputs: ["h"]),
          Node(name: "add", opType: "Add", inputs: ["l", "h"], outputs: ["y"]),
        ],
        [
          "w0": w([8, 3, 1, 1]), "s0": Self.int64s([0]), "e0": Self.int64s([4]), "ax": Self.int64s([1]),
          "st": Self.int64s([step]), "s1": Self.int64s([-4]), "e1": Self.int64s([Int64.max]),
          "wL": w([2, step == 1 ? 4 : 2, 1, 1]), "wH": w([2, 4, 1, 1]),
        ])
    }
    let g = net(step: 1)
    var o = F.options(.channelL1, 0.5)
    o.shrink = true
    let (shrunk, report) = try Pruner.prune(g, o)
    #expect(report.notes.isEmpty, "\(report.notes)")
    #expect(F.weight(shrunk, node: "conv0")?.shape == [4, 3, 1, 1])
    // Two of the first four go, so the upper slice starts at 2 (it said -4) and ends at 4.
    let lo = try #require(shrunk.nodes.first { $0.name == "lo" }),
      hi = try #require(shrunk.nodes.first { $0.name == "hi" })
    #expect(shrunk.constants[lo.inputs[1]]?.int64s == [0] && shrunk.constants[lo.inputs[2]]?.int64s == [2])
    #expect(shrunk.constants[hi.inputs[1]]?.int64s == [2] && shrunk.constants[hi.inputs[2]]?.int64s == [4])
    let (inPlace, _) = try Pruner.prune(g, F.options(.channelL1, 0.5))
    var xrng = SeededRNG(seed: 184)
    let x = F.tensor([1, 3, 6, 6], (0..<108).map { _ in Float.random(in: -1...1, using: &xrng) })
    #expect(Self.close(["y": try F.run(inPlace, x)], ["y": try F.run(shrunk, x)]))
    // Step 2 along the channels is not followed: the group stays in place, with the reason.
    let a = ChannelAnalysis.analyse(net(step: 2))
    #expect(a.groups.first { $0.producers == [0] }?.blocked?.contains("step 2") == true)
  }

  /// Split sizes as an attribute (opset 11), an input (13) or num_outputs (18: equal parts), and
  /// Slice bounds as attributes (opset 9), rewritten for what is kept; Sparrow's executor on the
  /// in-place and the shrunk model.
  @Test(arguments: [9, 11, 13, 18]) func cutsInEveryOpsetForm(_ opset: Int) throws {
    var rng = SeededRNG(seed: 191)
    func w(_ shape: [Int]) -> Tensor { F.tensor(shape, F.distinct(shape.reduce(1, *), rng: &rng)) }
    let equal = opset == 18
    var nodes = [
      Node(name: "conv0", opType: "Conv", inputs: ["x", "w0", "b0"], outputs: ["c0"]),
      Node(name: "relu", opType: "Relu", inputs: ["c0"], outputs: ["r0"]),
    ]
    var constants = ["w0": w([8, 3, 1, 1]), "b0": w([8])]
    if opset == 9 {
      nodes.append(
        Node(
          name: "cut", opType: "Slice", inputs: ["r0"], outputs: ["sb"],
          attributes: ["starts": .ints([2]), "ends": .ints([8]), "axes": .ints([1])]))
    } else {
      var split = Node(
        name: "cut", opType: "Split", inputs: ["r0"], outputs: ["sa", "sb"], attributes: ["axis": .int(1)])
      if opset == 11 { split.attributes["split"] = .ints([3, 5]) }
      if opset == 13 {
        split.inputs.append("sizes")
        constants["sizes"] = Self.int64s([3, 5])
      }
      if equal { split.attributes["num_outputs"] = .int(2) }
      nodes.append(split)
      nodes.append(Node(name: "convA", opType: "Conv", inputs: ["sa", "wA"], outputs: ["ya"]))
      constants["wA"] = w([2, equal ? 4 : 3, 1, 1])
    }
    nodes.append(Node(name: "convB", opType: "Conv", inputs: ["sb", "wB"], outputs: ["yb"]))
    constants["wB"] = w([2, opset == 9 ? 6 : equal ? 4 : 5, 1, 1])
    let g = Graph(
      inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(1), .fixed(3), .fixed(6), .fixed(6)])],
      outputs: (opset == 9 ? ["yb"] : ["ya", "yb"]).map { ValueInfo(name: $0) }, nodes: nodes, constants: constants,
      opset: opset)
    var o = F.options(.channelL1, 0.5)
    let (inPlace, _) = try Pruner.prune(g, o)
    o.shrink = true
    let (shrunk, report) = try Pruner.prune(g, o)
    #expect(report.notes.isEmpty, "\(report.notes)")
    let cut = try #require(shrunk.nodes.first { $0.name == "cut" })
    switch opset {
    case 9:
      // Three of the window's six go; channels 0 and 1, outside every window, stay.
      #expect(cut.attributes["starts"] == .ints([2]) && cut.attributes["ends"] == .ints([5]))
      #expect(F.weight(shrunk, node: "conv0")?.shape == [5, 3, 1, 1])
    case 11: #expect(cut.attributes["split"] == .ints([1, 2]))
    default:
      #expect(cut.attributes["num_outputs"] == nil)
      #expect(shrunk.constants[cut.inputs.count > 1 ? cut.inputs[1] : ""]?.int64s == (equal ? [2, 2] : [1, 2]))
    }
    var xrng = SeededRNG(seed: 192)
    let x = F.tensor([1, 3, 6, 6], (0..<108).map { _ in Float.random(in: -1...1, using: &xrng) })
    let run = { (m: Graph) in try Session(plan: try Planner.plan(m, options: PlanOptions(threads: 1))).run(["x": x]) }
    #expect(Self.close(try run(inPlace), try run(shrunk)))
  }

  @Test func splitAlongAnotherAxisPassesTheChannels() throws {
    var rng = SeededRNG(seed: 188)
    func w(_ shape: [Int]) -> Tensor { F.tensor(shape, F.distinct(shape.reduce(1, *), rng: &rng)) }
    // conv0 -> Relu -> Split along the rows [2, 4] -> one reader each, two model outputs.
    let g = Graph(
      inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(1), .fixed(3), .fixed(6), .fixed(6)])],
      outputs: [ValueInfo(name: "ya"), ValueInfo(name: "yb")],
      nodes: [
        Node(name: "conv0", opType: "Conv", inputs: ["x", "w0", "b0"], outputs: ["c0"]),
        Node(name: "relu", opType: "Relu", inputs: ["c0"], outputs: ["r0"]),
        Node(
          name: "rows", opType: "Split", inputs: ["r0", "sizes"], outputs: ["ta", "tb"], attributes: ["axis": .int(2)]),
        Node(name: "convA", opType: "Conv", inputs: ["ta", "wA"], outputs: ["ya"]),
        Node(name: "convB", opType: "Conv", inputs: ["tb", "wB"], outputs: ["yb"]),
      ],
      constants: [
        "w0": w([8, 3, 1, 1]), "b0": w([8]), "sizes": Self.int64s([2, 4]), "wA": w([2, 8, 1, 1]),
        "wB": w([2, 8, 1, 1]),
      ], opset: 13)
    let group = try #require(ChannelAnalysis.analyse(g).groups.first { $0.producers == [0] })
    #expect(group.blocked == nil && group.channels == 8)
    var o = F.options(.channelL1, 0.5)
    let (inPlace, _) = try Pruner.prune(g, o)
    o.shrink = true
    let (shrunk, report) = try Pruner.prune(g, o)
    #expect(report.notes.isEmpty, "\(report.notes)")
    #expect(
      F.weight(shrunk, node: "convA")?.shape == [2, 4, 1, 1] && F.weight(shrunk, node: "convB")?.shape == [2, 4, 1, 1])
    var xrng = SeededRNG(seed: 189)
    let x = F.tensor([1, 3, 6, 6], (0..<108).map { _ in Float.random(in: -1...1, using: &xrng) })
    let run = { (m: Graph) in try Session(plan: try Planner.plan(m, options: PlanOptions(threads: 1))).run(["x": x]) }
    #expect(Self.close(try run(inPlace), try run(shrunk)))
  }

  /// conv0 (8 filters) -> GroupNormalization (`groups`; scale per group at opset 18) -> Relu ->
  /// conv1 -> y.
  static func groupNormNet(groups: Int64, opset: Int, rng: inout SeededRNG) -> Graph {
    func w(_ shape: [Int]) -> Tensor { F.tensor(shape, F.distinct(shape.reduce(1, *), rng: &rng)) }
    let per = opset == 18 ? Int(groups) : 8
    return graph(
      [
        Node(name: "conv0", opType: "Conv", inputs: ["x", "w0", "b0"], outputs: ["c0"]),
        Node(
          name: "gn", opType: "GroupNormalization", inputs: ["c0", "gs", "gb"], outputs: ["n0"],
          attributes: ["num_groups": .int(groups)]),
        Node(name: "relu", opType: "Relu", inputs: ["n0"], outputs: ["r0"]),
        Node(name: "conv1", opType: "Conv", inputs: ["r0", "w1"], outputs: ["y"]),
      ],
      ["w0": w([8, 3, 1, 1]), "b0": w([8]), "gs": w([per]), "gb": w([per]), "w1": w([2, 8, 1, 1])], opset: opset)
  }

  @Test(arguments: [18, 21]) func groupNormLosesWholeNormGroups(_ opset: Int) throws {
    var rng = SeededRNG(seed: 185)
    let g = Self.groupNormNet(groups: 4, opset: opset, rng: &rng)
    let group = try #require(ChannelAnalysis.analyse(g).groups.first { $0.producers == [0] })
    #expect(
      group.channels == 4 && group.unit(ofProducer: 0) == 2 && group.blocked == nil && group.changesFunction == nil)
    var o = F.options(.channelL1, 0.5)
    let (inPlace, _) = try Pruner.prune(g, o)
    o.shrink = true
    let (shrunk, report) = try Pruner.prune(g, o)
    #expect(report.notes.isEmpty, "\(report.notes)")
    // The two norm groups (filter pairs) of smallest summed L1 go, computed here.
    let l1 = F.l1(try #require(g.constants["w0"]))
    let gone = F.smallest((0..<4).map { l1[2 * $0] + l1[2 * $0 + 1] }, 2)
    #expect(F.zeroFilters(try #require(F.weight(inPlace, node: "conv0"))) == gone.flatMap { [2 * $0, 2 * $0 + 1] })
    let gn = try #require(shrunk.nodes.first { $0.name == "gn" })
    #expect(WeightLayers.intAttribute(gn, "num_groups", 0) == 2)
    #expect(shrunk.constants[gn.inputs[1]]?.shape == [opset == 18 ? 2 : 4])
    let keptScale = try #require(g.constants["gs"]).floats.enumerated().filter { i, _ in
      !gone.contains(opset == 18 ? i : i / 2)
    }.map(\.element)
    #expect(shrunk.constants[gn.inputs[1]]?.floats == keptScale)
    #expect(
      F.weight(shrunk, node: "conv0")?.shape == [4, 3, 1, 1] && F.weight(shrunk, node: "conv1")?.shape == [2, 4, 1, 1])
  }

  @Test func groupNormThatDoesNotDivideIsNotFollowed() {
    var rng = SeededRNG(seed: 186)
    let a = ChannelAnalysis.analyse(Self.groupNormNet(groups: 3, opset: 21, rng: &rng))
    #expect(
      a.groups.first { $0.producers == [0] }?.blocked?.contains("3 norm groups do not divide its 8 channels") == true)
  }

  /// GroupNorm as older torch exports write it: Reshape [0, 4, -1] -> InstanceNormalization ->
  /// Reshape to Shape(c0) -> per-channel Mul and Add -> Relu -> conv1; `back` names the tensor
  /// the second Reshape reshapes (the normalised one, or something else).
  static func reshapedGroupNorm(back: String, rng: inout SeededRNG) -> Graph {
    func w(_ shape: [Int]) -> Tensor { F.tensor(shape, F.distinct(shape.reduce(1, *), rng: &rng)) }
    return graph(
      [
        Node(name: "conv0", opType: "Conv", inputs: ["x", "w0", "b0"], outputs: ["c0"]),
        Node(name: "toGroups", opType: "Reshape", inputs: ["c0", "g4"], outputs: ["c0g"]),
        Node(name: "in", opType: "InstanceNormalization", inputs: ["c0g", "ones", "zeros"], outputs: ["n0g"]),
        Node(name: "shape", opType: "Shape", inputs: ["c0"], outputs: ["c0s"]),
        Node(name: "back", opType: "Reshape", inputs: [back, "c0s"], outputs: ["n0"]),
        Node(name: "scale", opType: "Mul", inputs: ["n0", "gamma"], outputs: ["n0m"]),
        Node(name: "shift", opType: "Add", inputs: ["n0m", "beta"], outputs: ["n0a"]),
        Node(name: "relu", opType: "Relu", inputs: ["n0a"], outputs: ["r0"]),
        Node(name: "conv1", opType: "Conv", inputs: ["r0", "w1"], outputs: ["y"]),
      ],
      [
        "w0": w([8, 3, 1, 1]), "b0": w([8]), "g4": Self.int64s([0, 4, -1]),
        "ones": F.tensor([4], [Float](repeating: 1, count: 4)), "zeros": F.tensor([4], [Float](repeating: 0, count: 4)),
        "gamma": w([8, 1, 1]), "beta": w([8, 1, 1]), "w1": w([2, 8, 1, 1]),
      ])
  }

  @Test func reshapedGroupNormLosesWholeNormGroups() throws {
    var rng = SeededRNG(seed: 190)
    let g = Self.reshapedGroupNorm(back: "n0g", rng: &rng)
    let group = try #require(ChannelAnalysis.analyse(g).groups.first { $0.producers == [0] })
    #expect(group.channels == 4 && group.unit(ofProducer: 0) == 2 && group.blocked == nil)
    var o = F.options(.channelL1, 0.5)
    o.shrink = true
    let (shrunk, report) = try Pruner.prune(g, o)
    #expect(report.notes.isEmpty, "\(report.notes)")
    let toGroups = try #require(shrunk.nodes.first { $0.name == "toGroups" })
    #expect(shrunk.constants[toGroups.inputs[1]]?.int64s == [0, 2, -1])
    let norm = try #require(shrunk.nodes.first { $0.name == "in" })
    #expect(shrunk.constants[norm.inputs[1]]?.shape == [2] && shrunk.constants[norm.inputs[2]]?.shape == [2])
    #expect(F.weight(shrunk, node: "conv1")?.shape == [2, 4, 1, 1])
    // Reshaping something else to c0's shape: c0's channels cannot go, and the reason says so.
    var rng2 = SeededRNG(seed: 190)
    let other = ChannelAnalysis.analyse(Self.reshapedGroupNorm(back: "x", rng: &rng2))
    #expect(other.groups.first { $0.producers == [0] }?.blocked?.contains("its shape is read by") == true)
  }

  @Test func aSparsityThatWouldEmptyAGroupIsAnErrorUnlessOneChannelIsKept() throws {
    var rng = SeededRNG(seed: 193)
    // conv0's group has 2 channels: round(0.8 * 2) = 2 would remove it whole.
    let g = F.convChain([[2, 3, 1, 1], [4, 2, 1, 1]], rng: &rng)
    var o = F.options(.channelL1, 0.8)
    #expect(
      throws: PruneError(
        "sparsity 0.8 would remove all 2 channels of the group of conv0: use a lower --sparsity, "
          + "or --keep-one-per-group to keep one channel of such groups")
    ) { _ = try Pruner.prune(g, o) }
    // 0.5 removes one of the two: no error.
    let (half, _) = try Pruner.prune(g, F.options(.channelL1, 0.5))
    #expect(F.zeroFilters(try #require(F.weight(half, node: "conv0"))).count == 1)
    o.keepOnePerGroup = true
    let (pruned, report) = try Pruner.prune(g, o)
    #expect(F.zeroFilters(try #require(F.weight(pruned, node: "conv0"))).count == 1)
    #expect(
      report.notes == ["sparsity 0.8 would remove all 2 channels of the group of conv0: 1 kept"], "\(report.notes)")
    // The opt-in is for channel methods only.
    var m = F.options(.magnitude, 0.5)
    m.keepOnePerGroup = true
    #expect(throws: PruneError.self) { _ = try Pruner.prune(g, m) }
  }

  @Test func channelTaylorNeedsCalibrationAndScoresByTheReaders() throws {
    var rng = SeededRNG(seed: 187)
    let g = F.convChain([[8, 3, 1, 1], [4, 8, 1, 1]], rng: &rng)
    let x = F.tensor([1, 3, 6, 6], (0..<108).map { _ in Float.random(in: -1...1, using: &rng) })
    var o = F.options(.channelTaylor, 0.5)
    #expect(throws: PruneError.self) { _ = try Pruner.prune(g, o) }
    o.calibration = [["x": x]]
    let (pruned, _) = try Pruner.prune(g, o)
    // Reference: conv0's channel c reaches conv1 as relu(conv0(x))_c; its score is
    // ||w1[:, c]||_2 * ||relu(conv0(x))_c||_2, computed here plainly.
    let w0 = try #require(g.constants["w0"]).floats, w1 = try #require(g.constants["w1"]).floats
    let xf = x.floats
    var score = [Double](repeating: 0, count: 8)
    for c in 0..<8 {
      var act: Double = 0
      for b in 0..<1 {
        for p in 0..<36 {
          var v: Double = 0
          for i in 0..<3 { v += Double(w0[c * 3 + i]) * Double(xf[(b * 3 + i) * 36 + p]) }
          act += max(v, 0) * max(v, 0)
        }
      }
      let col = (0..<4).reduce(0.0) { $0 + Double(w1[$1 * 8 + c]) * Double(w1[$1 * 8 + c]) }
      score[c] = col.squareRoot() * act.squareRoot()
    }
    #expect(F.zeroFilters(try #require(F.weight(pruned, node: "conv0"))) == F.smallest(score, 4))
  }
}
