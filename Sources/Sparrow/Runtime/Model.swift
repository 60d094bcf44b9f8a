import Foundation
import Synchronization

/// A loaded model: imported, optimised, and planned on demand per input shape and per value of
/// its plan-time inputs (`shapeInputs`; plans cached, at most `maxPlans`, least recently used
/// dropped first).
public final class Model: Sendable {
  public let graph: Graph
  public let options: PlanOptions
  public let maxPlans: Int
  /// Inputs whose values decide shapes: each value gets its own plan.
  public let shapeInputs: ShapeInputs
  private let cache = Mutex<[(key: PlanKey, plan: Plan)]>([])

  struct PlanKey: Equatable {
    var shapes: [String: [Int]]
    var values: [String: Tensor]
  }

  public init(graph: Graph, optimize: Bool = true, options: PlanOptions = PlanOptions(), maxPlans: Int = 8)
    throws(ModelError)
  {
    self.graph = optimize ? try Passes.optimize(graph) : graph
    self.options = options
    self.maxPlans = max(1, maxPlans)
    shapeInputs = ShapeInputs(self.graph)
  }

  public convenience init(
    contentsOf url: URL, optimize: Bool = true, options: PlanOptions = PlanOptions(), maxPlans: Int = 8
  ) throws(ModelError) {
    try self.init(graph: try ONNXImporter.load(contentsOf: url), optimize: optimize, options: options, maxPlans: maxPlans)
  }

  /// The plan for these input shapes (declared shapes fill in what is not given) and the values
  /// of the plan-time inputs among `values` (the others are ignored).
  public func plan(shapes: [String: [Int]] = [:], values: [String: Tensor] = [:]) throws(ModelError) -> Plan {
    let types = try Planner.inputTypes(graph, shapes: shapes)
    let key = PlanKey(shapes: types.mapValues(\.shape), values: values.filter { shapeInputs.names.contains($0.key) })
    if let hit = cache.withLock({ entries -> Plan? in
      guard let i = entries.firstIndex(where: { $0.key == key }) else { return nil }
      let e = entries.remove(at: i)
      entries.append(e)
      return e.plan
    }) {
      return hit
    }
    let plan = try Planner.plan(graph, shapes: key.shapes, values: key.values, options: options, shapeInputs: shapeInputs)
    cache.withLock { entries in
      entries.append((key, plan))
      if entries.count > maxPlans { entries.removeFirst() }
    }
    return plan
  }

  /// Plans for the inputs' shapes (and values of plan-time inputs) and runs once on a fresh session.
  public func run(_ inputs: [String: Tensor]) throws -> [String: Tensor] {
    try Session(plan: try plan(shapes: inputs.mapValues(\.shape), values: inputs)).run(inputs)
  }
}
