import Testing

@testable import Sparrow

/// One-node graphs for op tests: `graph` builds the node over `inputs` and `constants`, `input`
/// declares a graph input of fixed shape, `expectPlanError` plans and expects a ModelError.
protocol SingleNodeGraphs {}

extension SingleNodeGraphs {
  func graph(
    _ op: String, inputs: [ValueInfo], constants: [String: Tensor] = [:], nodeInputs: [String],
    outputs: [String] = ["Y"], attributes: [String: Attribute] = [:], opset: Int = 13
  ) -> Graph {
    Graph(
      inputs: inputs, outputs: outputs.map { ValueInfo(name: $0) },
      nodes: [Node(name: "n", opType: op, inputs: nodeInputs, outputs: outputs, attributes: attributes)],
      constants: constants, opset: opset)
  }

  func input(_ name: String, _ dtype: DType, _ shape: [Int]) -> ValueInfo {
    ValueInfo(name: name, dtype: dtype, shape: shape.map { .fixed($0) })
  }

  /// Plans `g`, which must fail with a ModelError whose message contains `text`.
  func expectPlanError(_ g: Graph, containing text: String, sourceLocation: SourceLocation = #_sourceLocation) {
    do {
      _ = try Planner.plan(g)
      Issue.record("expected a ModelError mentioning '\(text)'", sourceLocation: sourceLocation)
    } catch let e {
      #expect(e.message.contains(text), "\(e.message)", sourceLocation: sourceLocation)
    }
  }
}
