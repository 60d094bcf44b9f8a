import Foundation

/// What `sparrow inspect` (and the C ABI's `sparrow_inspect`) reports about a model: op
/// coverage, and per weighted layer the sparsity, chosen format, kernel and measured alternatives.
public struct Inspection: Encodable, Sendable {
  public var model: String
  public var opset: Int
  public var nodes: Int
  public var ops: [String: Int]
  public var unsupported: [String: Int]
  public var inputs: [String: [Int]]
  /// Inputs whose values set shapes: planned per value, given with --input.
  public var shapeInputs: [String]
  public var planError: String?
  public var layers: [LayerReport]

  /// Inspects `graph` (named `model` in the report): plans it for `shapes` and the plan-time
  /// inputs' `values` when every op is supported; a planning failure is reported, not thrown.
  public init(
    graph: Graph, model: String, optimize: Bool = true, options: PlanOptions = PlanOptions(),
    shapes: [String: [Int]] = [:], values: [String: Tensor] = [:]
  ) {
    var ops: [String: Int] = [:], unsupported: [String: Int] = [:]
    for n in graph.nodes {
      ops[n.opType, default: 0] += 1
      if !Planner.supports(n) { unsupported[n.opType, default: 0] += 1 }
    }
    self.model = model
    opset = graph.opset
    nodes = graph.nodes.count
    self.ops = ops
    self.unsupported = unsupported
    inputs = [:]
    shapeInputs = ShapeInputs(graph).names
    planError = nil
    layers = []
    guard unsupported.isEmpty else {
      planError = "unsupported ops: " + unsupported.keys.sorted().joined(separator: ", ")
      return
    }
    do {
      let m = try Model(graph: graph, optimize: optimize, options: options)
      let p = try m.plan(shapes: shapes, values: values)
      layers = p.layers
      inputs = Dictionary(uniqueKeysWithValues: p.inputs.map { ($0.name, $0.type.shape) })
    } catch {
      planError = error.message
    }
  }

  /// The report as pretty-printed JSON with sorted keys.
  public func json() throws -> Data {
    let enc = JSONEncoder()
    enc.outputFormatting = [.prettyPrinted, .sortedKeys]
    return try enc.encode(self)
  }
}
