/// Who writes and who reads each value of a graph, for passes that match chains of nodes.
/// Pattern matching on top of the graph's index: typed producer/consumer lookups for passes that
/// match chains of nodes (default domain, one output).
struct PatternIndex {
  let g: Graph
  let index: GraphIndex
  /// How many times each value is read (node inputs and graph outputs).
  var uses: [String: Int] { index.useCounts }

  init(_ g: Graph) {
    self.g = g
    index = GraphIndex(g)
  }

  /// The node writing `value` when it is `op` in the default domain with one output.
  func producer(of value: String, _ op: String) -> (Int, Node)? {
    guard let i = index.producer(of: value) else { return nil }
    return Self.match(g.nodes[i], op).map { (i, $0) }
  }

  /// The one reader of `value` when it is `op` (default domain, one output) and nothing else reads it.
  func soleConsumer(of value: String, _ op: String) -> (Int, Node)? {
    guard let i = index.soleConsumer(of: value) else { return nil }
    return Self.match(g.nodes[i], op).map { (i, $0) }
  }

  private static func match(_ n: Node, _ op: String) -> Node? {
    n.opType == op && FoldAffine.isDefaultDomain(n) && n.outputs.count == 1 ? n : nil
  }

  /// The value of a one-element float constant.
  func scalar(_ name: String) -> Float? {
    guard let t = g.constants[name], t.count == 1, t.dtype == .float32 || t.dtype == .float64 else { return nil }
    return t.floats[0]
  }

  /// The other operand of a two-input node, when `name` is one of its inputs (and not both).
  func other(_ n: Node, _ name: String) -> String? {
    guard n.inputs.count == 2, n.inputs[0] != n.inputs[1] else { return nil }
    return n.inputs[0] == name ? n.inputs[1] : (n.inputs[1] == name ? n.inputs[0] : nil)
  }

  static func near(_ v: Float?, _ want: Float) -> Bool {
    guard let v else { return false }
    return abs(v - want) <= 1e-4 * abs(want)
  }

  /// Removes `removed` and puts `replaced` in place: what every fusing pass ends with.
  static func apply(_ g: inout Graph, removed: Set<Int>, replaced: [Int: Node]) {
    for (i, n) in replaced { g.nodes[i] = n }
    g.nodes = g.nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
  }
}
