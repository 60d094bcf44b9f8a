import Testing

@testable import Sparrow

/// Depthwise convolution (direct loop, interior/border split) against the same convolution as a
/// dense Conv with block-diagonal weights (im2col + sgemm), over random geometry.
@Suite struct DepthwiseTests {
  func conv(_ c: Int, _ h: Int, _ w: Int, _ weights: Tensor, group: Int, attrs: [String: Attribute], x: Tensor)
    throws -> Tensor
  {
    var a = attrs
    a["group"] = .int(Int64(group))
    let g = Graph(
      inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(1), .fixed(c), .fixed(h), .fixed(w)])],
      outputs: [ValueInfo(name: "y")],
      nodes: [Node(name: "conv", opType: "Conv", inputs: ["x", "w"], outputs: ["y"], attributes: a)],
      constants: ["w": weights], opset: 13)
    let plan = try Planner.plan(g, options: PlanOptions(threads: 1, format: .fixed(.dense)))
    return try Session(plan: plan).run(["x": x])["y"]!
  }

  @Test(arguments: 0..<24) func matchesBlockDiagonalConv(_ seed: Int) throws {
    var rng = SeededRNG(seed: UInt64(seed) + 500)
    let c = Int.random(in: 1...4, using: &rng), h = Int.random(in: 1...9, using: &rng), w = Int.random(in: 1...9, using: &rng)
    let k = Int.random(in: 1...3, using: &rng), s = Int.random(in: 1...2, using: &rng), d = Int.random(in: 1...2, using: &rng)
    let pads = (0..<4).map { _ in Int64.random(in: 0...2, using: &rng) }
    guard h + Int(pads[0] + pads[2]) >= (k - 1) * d + 1, w + Int(pads[1] + pads[3]) >= (k - 1) * d + 1 else { return }
    let attrs: [String: Attribute] = [
      "kernel_shape": .ints([Int64(k), Int64(k)]), "strides": .ints([Int64(s), Int64(s)]),
      "dilations": .ints([Int64(d), Int64(d)]), "pads": .ints(pads),
    ]
    let dw = (0..<(c * k * k)).map { _ in rng.float() }
    var full = [Float](repeating: 0, count: c * c * k * k)
    for o in 0..<c { for t in 0..<(k * k) { full[(o * c + o) * k * k + t] = dw[o * k * k + t] } }
    let x = try Tensor(shape: [1, c, h, w], floats: (0..<(c * h * w)).map { _ in rng.float() })
    let got = try conv(c, h, w, try Tensor(shape: [c, 1, k, k], floats: dw), group: c, attrs: attrs, x: x)
    let ref = try conv(c, h, w, try Tensor(shape: [c, c, k, k], floats: full), group: 1, attrs: attrs, x: x)
    #expect(got.shape == ref.shape)
    #expect(firstMismatch(got.floats, ref.floats) == nil, "seed \(seed): c\(c) \(h)x\(w) k\(k) s\(s) d\(d) pads \(pads)")
  }
}
