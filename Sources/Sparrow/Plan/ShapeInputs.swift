/// Graph inputs whose *values* decide a shape: a Reshape's shape, Slice's starts, ConstantOfShape's
/// input, Range's bounds, fed from a graph input directly or through any ops (Cast, Concat, Add...).
/// Plans are made per input shape, so such a value must be known when planning: the integer ones
/// are *plan-time inputs*, and a plan is made (and cached) per shape and value of them. Other
/// inputs (float data) that reach a shape stay refused by the op that needs the value.
///
/// Found once per graph by walking back from every shape-determining input (`OpBuilder.shapeInputs`)
/// through the ops that compute it, stopping at `Shape` and `Size`, whose outputs depend on their
/// input's shape only (which is planned anyway).
public struct ShapeInputs: Sendable {
  /// The plan-time inputs, in the graph's input order.
  public let names: [String]
  /// Each plan-time input's first node (in run order) whose output shape depends on its value.
  let neededBy: [String: Node]

  /// Plan-time values are compared on every run and kept in plan-cache keys: small ones only.
  public static let maxElements = 1024

  static let shapeOnly: Set<String> = ["Shape", "Size"]

  public init(_ g: Graph) {
    let index = GraphIndex(g)
    let inputs = Set(g.inputs.map(\.name))
    var needed: [String: Node] = [:]
    var seen: Set<String> = []
    for node in g.nodes where Planner.supports(node) {
      let slots = Planner.builders[node.opType]!.shapeInputs.filter { $0 < node.inputs.count }
      var pending = slots.map { node.inputs[$0] }
      while let v = pending.popLast() {
        guard !v.isEmpty, seen.insert(v).inserted else { continue }
        if inputs.contains(v) {
          needed[v] = node
        } else if let p = index.producer(of: v).map({ g.nodes[$0] }), !Self.shapeOnly.contains(p.opType) {
          pending += p.inputs
        }
      }
    }
    let integer = g.inputs.filter { needed[$0.name] != nil && [.int64, .int32].contains($0.dtype ?? .float32) }.map(\.name)
    names = integer
    neededBy = needed.filter { integer.contains($0.key) }
  }

  /// The given values of the plan-time inputs, checked against their planned types (`types`).
  func values(_ given: [String: Tensor], types: [String: TensorType]) throws(ModelError) -> [String: Tensor] {
    var out: [String: Tensor] = [:]
    for name in names {
      let node = neededBy[name]!, want = types[name]!
      guard want.count <= Self.maxElements else {
        throw ModelError(
          node: node,
          "its output's shape depends on the value of input '\(name)' (\(want)), which has more than \(Self.maxElements) elements; plans are made per value of such inputs, so they must be small")
      }
      guard let t = given[name] else {
        throw ModelError(
          node: node,
          "its output's shape depends on the value of input '\(name)': give that value to plan (e.g. --input \(name)=FILE.npy); a plan is made per value")
      }
      guard t.dtype == want.dtype, t.shape == want.shape else {
        throw ModelError("input '\(name)' is \(t.dtype)\(t.shape), the plan is for \(want)")
      }
      out[name] = t
    }
    return out
  }
}
