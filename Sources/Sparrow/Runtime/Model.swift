import Foundation
import Synchronization

/// A loaded model: imported, optimised, and planned on demand per input shape (plans cached,
/// at most `maxPlans`, least recently used dropped first).
public final class Model: Sendable {
  public let graph: Graph
  public let options: PlanOptions
  public let maxPlans: Int
  private let cache = Mutex<[(key: [String: [Int]], plan: Plan)]>([])

  public init(graph: Graph, optimize: Bool = true, options: PlanOptions = PlanOptions(), maxPlans: Int = 8)
    throws(ModelError)
  {
    self.graph = optimize ? try Passes.optimize(graph) : graph
    self.options = options
    self.maxPlans = max(1, maxPlans)
  }

  public convenience init(
    contentsOf url: URL, optimize: Bool = true, options: PlanOptions = PlanOptions(), maxPlans: Int = 8
  ) throws(ModelError) {
    try self.init(graph: try ONNXImporter.load(contentsOf: url), optimize: optimize, options: options, maxPlans: maxPlans)
  }

  /// The plan for these input shapes (declared shapes fill in what is not given).
  public func plan(shapes: [String: [Int]] = [:]) throws(ModelError) -> Plan {
    let types = try Planner.inputTypes(graph, shapes: shapes)
    let key = types.mapValues(\.shape)
    if let hit = cache.withLock({ entries -> Plan? in
      guard let i = entries.firstIndex(where: { $0.key == key }) else { return nil }
      let e = entries.remove(at: i)
      entries.append(e)
      return e.plan
    }) {
      return hit
    }
    let plan = try Planner.plan(graph, shapes: key, options: options)
    cache.withLock { entries in
      entries.append((key, plan))
      if entries.count > maxPlans { entries.removeFirst() }
    }
    return plan
  }

  /// Plans for the inputs' shapes and runs once on a fresh session.
  public func run(_ inputs: [String: Tensor]) throws -> [String: Tensor] {
    try Session(plan: try plan(shapes: inputs.mapValues(\.shape))).run(inputs)
  }
}
