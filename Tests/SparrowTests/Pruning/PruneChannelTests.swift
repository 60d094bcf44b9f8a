import Foundation
import Testing

@testable import Sparrow

/// channel-l1 and channel-fpgm: which filters go (brute-force references), in place and shrunk;
/// the shrunk model must compute what the in-place model computes.
@Suite struct PruneChannelTests {
  typealias F = PruneFixtures

  @Test func l1RemovesTheSmallestNormFilters() throws {
    var rng = SeededRNG(seed: 21)
    let g = F.convChain([[8, 4, 3, 3], [6, 8, 3, 3]], rng: &rng)
    let (out, report) = try Pruner.prune(g, F.options(.channelL1, 0.5))
    let w0 = try #require(out.constants["w0"])
    #expect(F.zeroFilters(w0) == F.smallest(F.l1(try #require(g.constants["w0"])), 4))
    // conv1 makes the model's output: its filters stay.
    #expect(F.values(out, "w1") == F.values(g, "w1"))
    #expect(report.layers.first { $0.name == "conv1" }?.note.contains("model outputs") == true)
  }

  /// FPGM against a brute-force reference: each filter's summed Euclidean distance to the
  /// others; the filters with the smallest sums go.
  @Test(arguments: [0.25, 0.5, 0.75]) func fpgmRemovesTheFiltersNearestTheGeometricMedian(_ s: Double) throws {
    var rng = SeededRNG(seed: 22)
    let g = F.convChain([[8, 4, 3, 3], [6, 8, 3, 3]], rng: &rng)
    let w = F.values(g, "w0"), per = 36
    let sums = (0..<8).map { i in
      (0..<8).reduce(0.0) { acc, j in
        acc + (0..<per).reduce(0.0) { $0 + pow(Double(w[i * per + $1]) - Double(w[j * per + $1]), 2) }.squareRoot()
      }
    }
    let (out, _) = try Pruner.prune(g, F.options(.channelFPGM, s))
    #expect(F.zeroFilters(try #require(out.constants["w0"])) == F.smallest(sums, Int((s * 8).rounded())))
    // FPGM is not L1: on these weights the two choose differently at some sparsity.
    if s == 0.5 {
      let (l1, _) = try Pruner.prune(g, F.options(.channelL1, s))
      #expect(F.zeroFilters(try #require(l1.constants["w0"])) != F.zeroFilters(try #require(out.constants["w0"])))
    }
  }

  /// Global scope ranks filters by their score over the layer's mean score, so a layer's scale
  /// does not matter; it removes round(S · all filters), at least one filter staying per layer.
  @Test func globalRanksNormalisedScores() throws {
    var rng = SeededRNG(seed: 23)
    let g = F.convChain([[8, 4, 3, 3], [6, 8, 3, 3], [5, 6, 3, 3]], rng: &rng)
    var scaled = g
    scaled.constants["w0"] = F.tensor([8, 4, 3, 3], F.values(g, "w0").map { $0 * 1000 })
    let (a, _) = try Pruner.prune(g, F.options(.channelL1, 0.5, scope: .global))
    let (b, _) = try Pruner.prune(scaled, F.options(.channelL1, 0.5, scope: .global))
    let za = try F.zeroFilters(#require(a.constants["w0"])), zb = try F.zeroFilters(#require(b.constants["w0"]))
    let z1 = try F.zeroFilters(#require(a.constants["w1"]))
    #expect(za == zb)
    #expect(za.count + z1.count == 7)  // round(0.5 · (8 + 6)); conv2 makes the output
    // The reference: all normalised L1 scores together, the 7 smallest.
    let n0 = F.l1(try #require(g.constants["w0"])), n1 = F.l1(try #require(g.constants["w1"]))
    let all = n0.map { $0 / (n0.reduce(0, +) / 8) } + n1.map { $0 / (n1.reduce(0, +) / 6) }
    let ref = F.smallest(all, 7)
    #expect(za == ref.filter { $0 < 8 })
    #expect(z1 == ref.filter { $0 >= 8 }.map { $0 - 8 })
  }

  @Test func inPlaceZeroesBiasBatchNormAndDepthwiseAndCouplesResidualSides() throws {
    var rng = SeededRNG(seed: 24)
    let g = F.residualNet(rng: &rng)
    let (out, _) = try Pruner.prune(g, F.options(.channelL1, 0.5))
    let removedA = F.smallest(F.l1(try #require(g.constants["wA"])), 4)
    #expect(F.zeroFilters(try #require(out.constants["wA"])) == removedA)
    for name in ["bA", "scale", "shift", "bD"] {
      let v = F.values(out, name)
      #expect(removedA.allSatisfy { v[$0] == 0 }, "\(name)")
      #expect(v.indices.filter { !removedA.contains($0) }.allSatisfy { v[$0] == F.values(g, name)[$0] }, "\(name)")
    }
    #expect(F.values(out, "mean") == F.values(g, "mean"))
    #expect(F.zeroFilters(try #require(out.constants["wD"])) == removedA)
    // The residual Add couples convC and convR: the same 3 channels go from both, chosen by
    // the mean of their normalised L1 scores.
    let nC = F.l1(try #require(g.constants["wC"])), nR = F.l1(try #require(g.constants["wR"]))
    let meanC: Double = nC.reduce(0, +) / 6, meanR: Double = nR.reduce(0, +) / 6
    let joint: [Double] = (0..<6).map { (c: Int) -> Double in nC[c] / meanC / 2 + nR[c] / meanR / 2 }
    #expect(F.zeroFilters(try #require(out.constants["wC"])) == F.smallest(joint, 3))
    #expect(F.zeroFilters(try #require(out.constants["wR"])) == F.smallest(joint, 3))
    #expect(F.values(out, "wG") == F.values(g, "wG"))
  }

  /// The shrunk model is smaller and computes what the in-place model computes (Sparrow's own
  /// runtime, dense kernels, on seeded inputs).
  @Test(arguments: [PruneMethod.channelL1, .channelFPGM], [PruneScope.layer, .global])
  func shrunkEqualsInPlace(_ m: PruneMethod, _ scope: PruneScope) throws {
    var rng = SeededRNG(seed: 25)
    let g = F.residualNet(rng: &rng)
    let (inPlace, _) = try Pruner.prune(g, F.options(m, 0.5, scope: scope))
    let (shrunk, report) = try Pruner.prune(g, F.options(m, 0.5, scope: scope, shrink: true))
    #expect(report.notes.isEmpty, "\(report.notes)")
    let removed = try #require(F.weight(inPlace, node: "convA").map(F.zeroFilters)).count
    #expect(F.weight(shrunk, node: "convA")?.shape == [8 - removed, 3, 3, 3])
    #expect(F.weight(shrunk, node: "dw")?.shape == [8 - removed, 1, 3, 3])
    #expect(shrunk.nodes.first { $0.name == "dw" }?.attributes["group"] == .int(Int64(8 - removed)))
    let keptS = 6 - (try #require(F.weight(inPlace, node: "convC").map(F.zeroFilters)).count)
    #expect(F.weight(shrunk, node: "fc")?.shape == [4, keptS])
    #expect(F.weight(shrunk, node: "convR")?.shape == [keptS, 3, 1, 1])
    // convB's removed channels reached convC as relu(0.25): convC now has a bias.
    if try #require(F.weight(inPlace, node: "convB").map(F.zeroFilters)).count > 0 {
      #expect(shrunk.nodes.first { $0.name == "convC" }?.inputs.count == 3)
    }
    for seed in 0..<3 {
      var r = SeededRNG(seed: UInt64(seed))
      let x = F.tensor([1, 3, 6, 6], (0..<108).map { _ in r.float() })
      let a = try F.run(inPlace, x), b = try F.run(shrunk, x)
      #expect(b.shape == a.shape)
      let tol = 1e-4 * (a.floats.map { abs($0) }.max() ?? 0) + 1e-6
      #expect(zip(a.floats, b.floats).allSatisfy { abs($0 - $1) <= tol }, "seed \(seed): \(a.floats) vs \(b.floats)")
    }
  }

  /// A removed channel that reaches a padded convolution as a nonzero constant cannot be
  /// folded exactly: that group stays in place, says why, and the model is still exact.
  @Test func paddedReaderOfAConstantChannelIsRefused() throws {
    var rng = SeededRNG(seed: 26)
    let g = F.residualNet(rng: &rng, consumerKernel: 3)
    let (inPlace, _) = try Pruner.prune(g, F.options(.channelL1, 0.5))
    let (shrunk, report) = try Pruner.prune(g, F.options(.channelL1, 0.5, shrink: true))
    #expect(report.notes.count == 1)
    #expect(report.notes.first?.contains("convB") == true && report.notes.first?.contains("padding") == true)
    #expect(F.weight(shrunk, node: "convB")?.shape == [8, 4, 1, 1])  // inputs shrunk (group A), filters kept
    #expect(report.layers.first { $0.name == "convB" }?.note.contains("not shrunk") == true)
    var r = SeededRNG(seed: 1)
    let x = F.tensor([1, 3, 6, 6], (0..<108).map { _ in r.float() })
    let a = try F.run(inPlace, x).floats, b = try F.run(shrunk, x).floats
    #expect(zip(a, b).allSatisfy { abs($0 - $1) <= 1e-4 * (a.map { abs($0) }.max() ?? 0) + 1e-6 })
  }

  /// A channel Concat read only by convolutions: each input's channels are cut from the
  /// readers at the input's offset (one input used twice here). A Concat read by anything else
  /// keeps its inputs' groups in place.
  @Test(arguments: [false, true]) func concatReadByConvolutionsShrinks(_ readThroughRelu: Bool) throws {
    var rng = SeededRNG(seed: 27)
    var nodes = [
      Node(name: "a", opType: "Conv", inputs: ["x", "wa"], outputs: ["ha"]),
      Node(name: "e", opType: "Conv", inputs: ["x", "we"], outputs: ["he"]),
      Node(name: "cat", opType: "Concat", inputs: ["ha", "he", "ha"], outputs: ["hc"], attributes: ["axis": .int(1)]),
      Node(name: "b", opType: "Conv", inputs: [readThroughRelu ? "hr" : "hc", "wb"], outputs: ["y"]),
    ]
    if readThroughRelu { nodes.insert(Node(name: "r", opType: "Relu", inputs: ["hc"], outputs: ["hr"]), at: 3) }
    let g = Graph(
      inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(1), .fixed(3), .fixed(4), .fixed(4)])],
      outputs: [ValueInfo(name: "y")], nodes: nodes,
      constants: [
        "wa": F.tensor([4, 3, 1, 1], F.distinct(12, rng: &rng)), "we": F.tensor([6, 3, 1, 1], F.distinct(18, rng: &rng)),
        "wb": F.tensor([2, 14, 1, 1], F.distinct(28, rng: &rng)),
      ], opset: 13)
    let (inPlace, _) = try Pruner.prune(g, F.options(.channelL1, 0.5))
    let (shrunk, report) = try Pruner.prune(g, F.options(.channelL1, 0.5, shrink: true))
    #expect(F.zeroFilters(try #require(inPlace.constants["wa"])).count == 2)
    if readThroughRelu {
      #expect(report.notes.count == 2 && report.notes.allSatisfy { $0.contains("concatenated by Concat 'cat'") })
      #expect(F.weight(shrunk, node: "b")?.shape == [2, 14, 1, 1])
    } else {
      #expect(report.notes.isEmpty, "\(report.notes)")
      #expect(F.weight(shrunk, node: "a")?.shape == [2, 3, 1, 1])
      #expect(F.weight(shrunk, node: "e")?.shape == [3, 3, 1, 1])
      #expect(F.weight(shrunk, node: "b")?.shape == [2, 7, 1, 1])
    }
    var r = SeededRNG(seed: 2)
    let x = F.tensor([1, 3, 4, 4], (0..<48).map { _ in r.float() })
    let a = try F.run(inPlace, x).floats, b = try F.run(shrunk, x).floats
    #expect(zip(a, b).allSatisfy { abs($0 - $1) <= 1e-4 * (a.map { abs($0) }.max() ?? 0) + 1e-6 })
  }
}
