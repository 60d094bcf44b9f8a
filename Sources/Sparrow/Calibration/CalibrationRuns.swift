/// Runs a float model on user-given calibration inputs with chosen intermediate values as extra
/// outputs, and hands each value of each run to a visitor: the quantizer's activation ranges
/// and Wanda's input-channel norms both come from here.
enum CalibrationRuns {
  /// `visit(name, value)` for every name in `values`, once per run, runs in the given order.
  /// The model's own errors (inputs it refuses) propagate unchanged; a value the run did not
  /// produce throws `missing(name)`.
  static func collect(
    _ graph: Graph, values: [String], inputs: [[String: Tensor]], missing: (String) -> any Error,
    visit: (String, Tensor) throws -> Void
  ) throws {
    var g = graph
    let known = Set(g.outputs.map(\.name))
    for a in values where !known.contains(a) { g.outputs.append(ValueInfo(name: a)) }
    let model = try Model(graph: g, optimize: false, options: PlanOptions(threads: nil))
    for feeds in inputs {
      let out = try model.run(feeds)
      for a in values {
        guard let t = out[a] else { throw missing(a) }
        try visit(a, t)
      }
    }
  }
}
