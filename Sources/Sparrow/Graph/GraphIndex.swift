/// Who writes and who reads each value of a graph (by node index), built once per pass: the one
/// place rewrites and analyses ask "which node produces this" and "is this its only reader".
struct GraphIndex {
  /// The node writing each value (node outputs only; inputs and constants have none).
  let producers: [String: Int]
  /// How many times each value is read: node inputs and graph outputs.
  let useCounts: [String: Int]
  /// The last node reading each value (graph outputs are not nodes).
  private let lastReader: [String: Int]

  init(_ g: Graph) {
    var producers: [String: Int] = [:], uses: [String: Int] = [:], reader: [String: Int] = [:]
    for (i, n) in g.nodes.enumerated() {
      for o in n.outputs where !o.isEmpty { producers[o] = i }
      for v in n.inputs where !v.isEmpty {
        uses[v, default: 0] += 1
        reader[v] = i
      }
    }
    for o in g.outputs { uses[o.name, default: 0] += 1 }
    self.producers = producers
    useCounts = uses
    lastReader = reader
  }

  /// The index of the node writing `value`, or nil (a graph input, a constant, never written).
  func producer(of value: String) -> Int? { producers[value] }

  /// How many times `value` is read (node inputs and graph outputs).
  func uses(_ value: String) -> Int { useCounts[value] ?? 0 }

  /// The node reading `value` when that is its only read (a graph output counts as a read).
  func soleConsumer(of value: String) -> Int? { uses(value) == 1 ? lastReader[value] : nil }
}

extension Graph {
  /// How many times each value is read (node inputs and graph outputs).
  var useCounts: [String: Int] { GraphIndex(self).useCounts }
}
