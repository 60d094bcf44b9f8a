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

  /// A one-channel stem with a channel multiplier (the digits model's 1 -> 16, 3x3/2) on a batch of
  /// 5: with more threads than input channels the images run one per thread, each as the image
  /// alone computes it (the same kernel: the same bits).
  @Test(arguments: [(1, 16), (2, 3)]) func batchOverThreadsEqualsOneThread(c: Int, multiplier: Int) throws {
    var rng = SeededRNG(seed: UInt64(c * 100 + multiplier))
    let (n, h, w, m) = (5, 13, 11, c * multiplier)
    let g = Graph(
      inputs: [ValueInfo(name: "x", dtype: .float32, shape: [n, c, h, w].map { .fixed($0) })],
      outputs: [ValueInfo(name: "y")],
      nodes: [
        Node(
          name: "stem", opType: "Conv", inputs: ["x", "w", "b"], outputs: ["y"],
          attributes: [
            "group": .int(Int64(c)), "kernel_shape": .ints([3, 3]), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1]),
          ])
      ],
      constants: [
        "w": try Tensor(shape: [m, 1, 3, 3], floats: (0..<(m * 9)).map { _ in rng.float() }),
        "b": try Tensor(shape: [m], floats: (0..<m).map { _ in rng.float() }),
      ], opset: 13)
    let x = try Tensor(shape: [n, c, h, w], floats: (0..<(n * c * h * w)).map { _ in rng.float() })
    let one = try Model(graph: g, options: PlanOptions(threads: 1, format: .fixed(.dense), formatCache: nil)).run(["x": x])
    for threads in [2, 3] {
      let got = try Model(graph: g, options: PlanOptions(threads: threads, format: .fixed(.dense), formatCache: nil))
        .run(["x": x])
      #expect(got["y"]!.floats == one["y"]!.floats, "\(threads) threads")
    }
  }
}
