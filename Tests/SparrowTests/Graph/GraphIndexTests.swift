import Testing

@testable import Sparrow

/// Graph queries (`GraphIndex`) and the typed epilogue the fusion passes write.
@Suite struct GraphIndexTests {
  /// x → conv → relu → {y (graph output), add}; add(relu, relu) → z.
  static func graph() throws -> Graph {
    Graph(
      inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(1), .fixed(2), .fixed(3), .fixed(3)])],
      outputs: [ValueInfo(name: "r"), ValueInfo(name: "z")],
      nodes: [
        Node(name: "conv", opType: "Conv", inputs: ["x", "w"], outputs: ["c"]),
        Node(name: "relu", opType: "Relu", inputs: ["c"], outputs: ["r"]),
        Node(name: "add", opType: "Add", inputs: ["r", "r"], outputs: ["z"]),
      ],
      constants: ["w": try Tensor(shape: [2, 2, 1, 1], floats: [1, -2, 3, 0.5])], opset: 13)
  }

  @Test func producersUsesAndSoleConsumers() throws {
    let index = GraphIndex(try Self.graph())
    #expect(index.producer(of: "c") == 0 && index.producer(of: "r") == 1 && index.producer(of: "z") == 2)
    #expect(index.producer(of: "x") == nil && index.producer(of: "w") == nil)
    #expect(index.uses("c") == 1 && index.uses("r") == 3 && index.uses("z") == 1 && index.uses("nothing") == 0)
    #expect(index.soleConsumer(of: "c") == 1)
    #expect(index.soleConsumer(of: "r") == nil, "read twice by add and once as an output")
    #expect(index.soleConsumer(of: "z") == nil, "read only as a graph output")
  }

  @Test func activationFusionWritesATypedClamp() throws {
    var g = try Self.graph()
    g.outputs = [ValueInfo(name: "z")]
    let opt = try Passes.optimize(g)
    #expect(opt.nodes.map(\.opType) == ["Conv", "Add"])
    #expect(opt.nodes[0].epilogue == FusedEpilogue(clamp: 0...Float.infinity))
    #expect(opt.nodes[0].attributes.isEmpty, "no made-up ONNX attributes")
    #expect(opt.nodes[0].outputs == ["r"])
    expectError(ModelError.self, containing: "carries an epilogue") { _ = try ONNXExporter.encode(opt) }
  }
}
