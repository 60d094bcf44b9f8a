/// Every value's shape for one sample of the inputs' symbolic dimensions, from Sparrow's own
/// planner (shapes only matter here; weights are packed dense, nothing is timed or run). The
/// dependency graph asks it only where its own rules cannot tell whether a tensor broadcasts
/// along a member dimension: an attention mask that torch's export builds at run time from the
/// input's shape (Shape, Range, Where, Expand to [B, 1, S, S]) has size 1 along the heads axis.
///
/// Symbolic dimensions are set to 11 (not 1, which would make every such axis look like a
/// broadcast; a prime, so that no product of other sizes meets it by chance). A size read here
/// is 1 for every input only where it does not depend on the symbolic dimensions, which holds
/// for the head and channel axes this is asked about: their sizes come from the weights.
enum SampleShapes {
  static let symbolic = 11

  /// Name → shape; empty when the graph declares no shape for some input or cannot be planned.
  static func of(_ g: Graph) -> [String: [Int]] {
    var shapes: [String: [Int]] = [:]
    for v in g.inputs {
      guard let s = v.shape else { return [:] }
      shapes[v.name] = s.map { d in
        if case .fixed(let n) = d, n > 0 { return n }
        return symbolic
      }
    }
    var o = PlanOptions(threads: 1, format: .fixed(.dense), formatCache: nil)
    o.convAlgorithm = .im2col
    guard let plan = try? Planner.plan(g, shapes: shapes, options: o) else { return [:] }
    var out: [String: [Int]] = [:]
    for (name, id) in plan.inputIds { out[name] = plan.types[id].shape }
    for s in plan.steps {
      for (name, id) in zip(s.node.outputs, s.outputIds) where id >= 0 && id < plan.types.count {
        out[name] = plan.types[id].shape
      }
    }
    return out
  }
}
