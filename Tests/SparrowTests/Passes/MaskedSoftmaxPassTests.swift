import Foundation
import Testing

@testable import Sparrow

/// FuseMaskedSoftmax on attention's `Softmax(Add(Mul(Q·Kᵀ, c), mask))` and its variants: the
/// optimised graph has one Softmax carrying the scale and the mask, and computes what a plain
/// Double loop over the unfused definition computes, for masks of every broadcast shape BERT
/// exports use (and some they do not); where a value has a second reader, nothing fuses.
@Suite struct MaskedSoftmaxPassTests {
  static let (b, h, s, d) = (2, 3, 19, 4)

  enum Scaling { case mul, div, none }

  static func graph(
    scaling: Scaling, maskShape: [Int]?, maskFirst: Bool = false, extraReader: Bool = false, axis: Int64? = -1
  ) throws -> Graph {
    var nodes = [Node(name: "qk", opType: "MatMul", inputs: ["q", "kt"], outputs: ["scores"])]
    var last = "scores"
    switch scaling {
    case .mul: nodes.append(Node(name: "scale", opType: "Mul", inputs: ["scores", "c"], outputs: ["scaled"]))
    case .div: nodes.append(Node(name: "scale", opType: "Div", inputs: ["scores", "c"], outputs: ["scaled"]))
    case .none: break
    }
    if scaling != .none { last = "scaled" }
    var inputs = [
      ValueInfo(name: "q", dtype: .float32, shape: [b, h, s, d].map { .fixed($0) }),
      ValueInfo(name: "kt", dtype: .float32, shape: [b, h, d, s].map { .fixed($0) }),
    ]
    if let m = maskShape {
      inputs.append(ValueInfo(name: "mask", dtype: .float32, shape: m.map { .fixed($0) }))
      nodes.append(
        Node(name: "add", opType: "Add", inputs: maskFirst ? ["mask", last] : [last, "mask"], outputs: ["masked"]))
      last = "masked"
    }
    var outputs = [ValueInfo(name: "p")]
    if extraReader {
      nodes.append(Node(name: "peek", opType: "Relu", inputs: [last], outputs: ["peeked"]))
      outputs.append(ValueInfo(name: "peeked"))
    }
    nodes.append(
      Node(
        name: "softmax", opType: "Softmax", inputs: [last], outputs: ["p"],
        attributes: axis.map { ["axis": .int($0)] } ?? [:]))
    let c: Float = scaling == .div ? 2 : 0.5
    return Graph(
      inputs: inputs, outputs: outputs, nodes: nodes, constants: ["c": try Tensor(shape: [], floats: [c])], opset: 13)
  }

  static func inputs(maskShape: [Int]?) throws -> [String: Tensor] {
    var rng = SeededRNG(seed: 77)
    var t = [
      "q": try Tensor(shape: [b, h, s, d], floats: (0..<(b * h * s * d)).map { _ in rng.float() * 3 }),
      "kt": try Tensor(shape: [b, h, d, s], floats: (0..<(b * h * d * s)).map { _ in rng.float() * 3 }),
    ]
    if let m = maskShape {
      let count = m.reduce(1, *)
      // 0 (keep) or the dtype's minimum (padding), as BERT's extended mask.
      t["mask"] = try Tensor(
        shape: m, floats: (0..<count).map { _ in rng.float() > 0.4 ? 0 : -Float.greatestFiniteMagnitude })
    }
    return t
  }

  /// The unfused definition in Double: scores, scaled, plus the broadcast mask, softmax.
  static func reference(scaling: Scaling, maskShape: [Int]?, _ t: [String: Tensor]) throws -> [Double] {
    let q = t["q"]!.floats, kt = t["kt"]!.floats
    var out = [b, h, s, s]
    if let m = maskShape { out = broadcastShapes(out, m)! }
    let mask = t["mask"]?.floats
    let mIdx = maskShape.map { BroadcastIndex(from: $0, to: out) }
    let xIdx = BroadcastIndex(from: [b, h, s, s], to: out)
    let count = out.reduce(1, *), n = out.last!
    var v = [Double](repeating: 0, count: count)
    for e in 0..<count {
      let src = xIdx.source(e)
      let (bh, rest) = src.quotientAndRemainder(dividingBy: s * s)
      let (i, j) = rest.quotientAndRemainder(dividingBy: s)
      var dot: Float = 0
      for k in 0..<d { dot += q[(bh * s + i) * d + k] * kt[(bh * d + k) * s + j] }
      var x = Double(dot)
      if scaling == .mul { x = Double(Float(x * 0.5)) } else if scaling == .div { x = Double(Float(x / 2)) }
      if let mask, let mIdx { x = Double(Float(x + Double(mask[mIdx.source(e)]))) }
      v[e] = x
    }
    for r in 0..<(count / n) {
      let row = v[(r * n)..<((r + 1) * n)]
      let m = row.max()!
      let ex = row.map { Foundation.exp($0 - m) }
      let sum = ex.reduce(0, +)
      for j in 0..<n { v[r * n + j] = ex[j] / sum }
    }
    return v
  }

  static func check(scaling: Scaling, maskShape: [Int]?, maskFirst: Bool = false, expectFused: Bool = true) throws {
    let g = try graph(scaling: scaling, maskShape: maskShape, maskFirst: maskFirst)
    let opt = try Passes.optimize(g)
    let softmax = opt.nodes.first { $0.opType == "Softmax" }!
    if expectFused {
      #expect(
        opt.nodes.map(\.opType) == ["MatMul", "Softmax"], "\(scaling) \(maskShape ?? []): \(opt.nodes.map(\.opType))")
      #expect(softmax.epilogue.softmaxInput?.masked == (maskShape != nil))
    }
    let t = try inputs(maskShape: maskShape)
    let ref = try reference(scaling: scaling, maskShape: maskShape, t)
    for threads in [1, 2] {
      let got = try Model(graph: g, options: PlanOptions(threads: threads)).run(t)["p"]!.floats
      #expect(got.count == ref.count)
      let worst = zip(got, ref).map { Swift.abs(Double($0) - $1) }.max() ?? 0
      #expect(worst <= 1e-5, "\(scaling) mask \(maskShape ?? []) threads \(threads): worst \(worst)")
    }
  }

  @Test func bertMaskShapes() throws {
    let (b, h, s) = (Self.b, Self.h, Self.s)
    for shape in [[b, 1, 1, s], [b, 1, s, s], [1, 1, 1, s], [s], [b, h, s, s]] {
      try Self.check(scaling: .mul, maskShape: shape)
      try Self.check(scaling: .div, maskShape: shape, maskFirst: true)
    }
  }

  @Test func scalingOrMaskAlone() throws {
    let (b, s) = (Self.b, Self.s)
    try Self.check(scaling: .mul, maskShape: nil)
    try Self.check(scaling: .div, maskShape: nil)
    try Self.check(scaling: .none, maskShape: [b, 1, 1, s])
  }

  /// A mask whose last axis is 1, or that widens the scores (a batch the scores lack): added
  /// element by element, then the row kernel.
  @Test func otherBroadcasts() throws {
    let (b, h, s) = (Self.b, Self.h, Self.s)
    try Self.check(scaling: .mul, maskShape: [b, h, s, 1])
    try Self.check(scaling: .mul, maskShape: [3, b, 1, 1, s])
  }

  @Test func aSecondReaderOrAnotherAxisKeepsTheGraph() throws {
    let (b, s) = (Self.b, Self.s)
    let shared = try Passes.optimize(try Self.graph(scaling: .mul, maskShape: [b, 1, 1, s], extraReader: true))
    #expect(shared.nodes.map(\.opType) == ["MatMul", "Mul", "Add", "Relu", "Softmax"])
    let axis = try Passes.optimize(try Self.graph(scaling: .mul, maskShape: [b, 1, 1, s], axis: 1))
    #expect(axis.nodes.contains { $0.opType == "Add" })
    // opset 13's default axis is the last one.
    let noAxis = try Passes.optimize(try Self.graph(scaling: .mul, maskShape: [b, 1, 1, s], axis: nil))
    #expect(noAxis.nodes.map(\.opType) == ["MatMul", "Softmax"])
  }

  @Test func aMaskOfTheWrongTypeIsAModelError() throws {
    let (b, s) = (Self.b, Self.s)
    var g = try Self.graph(scaling: .mul, maskShape: [b, 1, 1, s])
    g.inputs[2].dtype = .int64
    do {
      _ = try Model(graph: g, options: PlanOptions(threads: 1)).plan()
      Issue.record("an int64 mask should be refused")
    } catch {
      #expect(error.message.contains("mask") && error.message.contains("float32"), "\(error.message)")
    }
  }
}
