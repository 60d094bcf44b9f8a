import Testing

@testable import Sparrow

/// FoldAffine and FuseHardSwish on the block Paddle exports (PP-OCRv4): Conv → Mul(a[c]) →
/// Add(b) → x·Clip(x+3, 0, 6)/6 → Mul(s) → Add(t). Optimised, it is Conv + one HardSwish, and
/// computes what the unoptimised graph computes; where a value has a second reader, nothing fuses.
@Suite struct AffineHardSwishPassTests {
  static func block(extraReader: Bool) throws -> Graph {
    var rng = SeededRNG(seed: 31)
    let (c, m) = (3, 4)
    var nodes = [
      Node(name: "conv", opType: "Conv", inputs: ["x", "w", "b"], outputs: ["y"], attributes: ["pads": .ints([1, 1, 1, 1])]),
      Node(name: "scale", opType: "Mul", inputs: ["a", "y"], outputs: ["y1"]),
      Node(name: "shift", opType: "Add", inputs: ["y1", "b1"], outputs: ["y2"]),
      Node(name: "plus3", opType: "Add", inputs: ["y2", "three"], outputs: ["t"]),
      Node(name: "clip", opType: "Clip", inputs: ["t", "zero", "six"], outputs: ["ct"]),
      Node(name: "mul", opType: "Mul", inputs: ["y2", "ct"], outputs: ["mt"]),
      Node(name: "div", opType: "Div", inputs: ["mt", "six"], outputs: ["h"]),
      Node(name: "s", opType: "Mul", inputs: ["h", "sc"], outputs: ["h1"]),
      Node(name: "t", opType: "Add", inputs: ["tc", "h1"], outputs: ["out"]),
    ]
    var outputs = [ValueInfo(name: "out")]
    if extraReader {
      nodes.append(Node(name: "peek", opType: "Relu", inputs: ["t"], outputs: ["peeked"]))
      outputs.append(ValueInfo(name: "peeked"))
    }
    return Graph(
      inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(1), .fixed(c), .fixed(6), .fixed(7)])],
      outputs: outputs, nodes: nodes,
      constants: [
        "w": try Tensor(shape: [m, c, 3, 3], floats: (0..<(m * c * 9)).map { _ in rng.float() * 2 }),
        "b": try Tensor(shape: [m], floats: (0..<m).map { _ in rng.float() }),
        "a": try Tensor(shape: [1, m, 1, 1], floats: (0..<m).map { _ in rng.float() * 3 }),
        "b1": try Tensor(shape: [1], floats: [0.25]),
        "three": try Tensor(shape: [], floats: [3]), "zero": try Tensor(shape: [], floats: [0]),
        "six": try Tensor(shape: [], floats: [6]), "sc": try Tensor(shape: [1], floats: [1.5]),
        "tc": try Tensor(shape: [1], floats: [-0.5]),
      ], opset: 13)
  }

  static func run(_ g: Graph, optimize: Bool) throws -> [String: Tensor] {
    var rng = SeededRNG(seed: 5)
    let x = try Tensor(shape: [1, 3, 6, 7], floats: (0..<126).map { _ in rng.float() * 4 })
    return try Model(graph: g, optimize: optimize, options: PlanOptions(threads: 1, format: .fixed(.dense))).run(["x": x])
  }

  @Test func foldsAndFuses() throws {
    let g = try Self.block(extraReader: false)
    let opt = try Passes.optimize(g)
    #expect(opt.nodes.map(\.opType) == ["Conv", "HardSwish"])
    #expect(opt.nodes[1].epilogue.affine == .init(scale: 1.5, shift: -0.5))
    let (a, b) = (try Self.run(g, optimize: false)["out"]!.floats, try Self.run(g, optimize: true)["out"]!.floats)
    let scale = a.map(abs).max()!
    #expect(zip(a, b).allSatisfy { abs($0 - $1) <= 1e-5 * scale })
  }

  @Test func leavesSharedValuesAlone() throws {
    let g = try Self.block(extraReader: true)
    let opt = try Passes.optimize(g)
    // The affine still folds; the HardSwish chain does not (t has a second reader).
    #expect(opt.nodes.map(\.opType) == ["Conv", "Add", "Clip", "Mul", "Div", "Mul", "Add", "Relu"])
    let (a, b) = (try Self.run(g, optimize: false), try Self.run(g, optimize: true))
    for k in ["out", "peeked"] {
      let scale = a[k]!.floats.map(abs).max()!
      #expect(zip(a[k]!.floats, b[k]!.floats).allSatisfy { abs($0 - $1) <= 1e-5 * scale }, "\(k)")
    }
  }
}
