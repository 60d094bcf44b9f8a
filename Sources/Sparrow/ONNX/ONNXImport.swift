import Foundation
import SwiftProtobuf

/// Reads ONNX models into a `Graph`. Everything from the file is checked: a corrupt or hostile
/// model gives a `ModelError` naming what is wrong, never a crash or an unbounded allocation.
public enum ONNXImporter {
  /// Bounds on what a model may make Sparrow allocate.
  public struct Limits: Sendable {
    /// Elements of any one tensor (default 256 Mi: 1 GiB of fp32).
    public var maxTensorElements = 1 << 28
    /// Elements of all constants together (default 1 Gi).
    public var maxTotalElements = 1 << 30
    public var maxNodes = 1 << 20
    public init() {}
  }

  /// Default-domain opsets Sparrow knows the semantics of.
  public static let supportedOpsets = 7...23

  public static func load(contentsOf url: URL, limits: Limits = Limits()) throws(ModelError) -> Graph {
    let data: Data
    do { data = try Data(contentsOf: url, options: .mappedIfSafe) } catch {
      throw ModelError("\(url.path): cannot read: \(error.localizedDescription)")
    }
    do { return try decode(data, limits: limits, externalDataFolder: url.deletingLastPathComponent()) } catch {
      throw ModelError("\(url.path): \(error.message)")
    }
  }

  /// A model from its bytes. Tensors kept in external data files (ONNXExternalData) are read
  /// from `externalDataFolder`, the model file's folder; without one they are an error.
  public static func decode(_ data: Data, limits: Limits = Limits(), externalDataFolder: URL? = nil) throws(ModelError)
    -> Graph
  {
    var model: Onnx_ModelProto
    do { model = try Onnx_ModelProto(serializedBytes: data) } catch {
      throw ModelError("not a valid ONNX model: the protobuf does not decode (\(error))")
    }
    guard model.hasGraph, model.irVersion > 0 else {
      throw ModelError("not an ONNX model: no graph or no IR version")
    }
    let opsets = model.opsetImport.filter { $0.domain == "" || $0.domain == "ai.onnx" }
    guard let opset = opsets.map({ Int(clamping: $0.version) }).max() else {
      throw ModelError("the model imports no opset of the default ONNX domain")
    }
    guard supportedOpsets.contains(opset) else {
      throw ModelError("opset \(opset) is outside the opsets Sparrow supports (\(supportedOpsets))")
    }
    try ONNXExternalData.resolve(&model.graph, folder: externalDataFolder)
    var graph = try importGraph(model.graph, opset: opset, limits: limits)
    graph.producer = model.producerName
    graph.irVersion = Int(clamping: model.irVersion)
    return graph
  }

  static func importGraph(_ g: Onnx_GraphProto, opset: Int, limits: Limits) throws(ModelError) -> Graph {
    guard g.node.count <= limits.maxNodes else {
      throw ModelError("the graph has \(g.node.count) nodes, over the limit of \(limits.maxNodes)")
    }
    var constants: [String: Tensor] = [:]
    var total = 0
    func addConstant(_ name: String, _ t: Tensor, _ origin: String) throws(ModelError) {
      guard !name.isEmpty else { throw ModelError("\(origin) has no name") }
      guard constants[name] == nil else { throw ModelError("constant '\(name)' is defined twice") }
      total += t.count
      guard total <= limits.maxTotalElements else {
        throw ModelError("the model's constants exceed \(limits.maxTotalElements) elements")
      }
      constants[name] = t
    }
    for t in g.initializer {
      let value: Tensor
      do {
        value = try Tensor(onnx: t, maxElements: limits.maxTensorElements)
      } catch {
        // Name the node that reads it (an int4 or float8 weight of a DequantizeLinear, say).
        guard let n = g.node.first(where: { $0.input.contains(t.name) }) else { throw error }
        throw ModelError("\(n.opType)\(n.name.isEmpty ? "" : " '\(n.name)'"): \(error.message)")
      }
      try addConstant(t.name, value, "an initializer")
    }
    for s in g.sparseInitializer {
      let t = try densify(s, limits: limits)
      try addConstant(s.values.name, t, "a sparse initializer")
    }
    var nodes: [Node] = []
    nodes.reserveCapacity(g.node.count)
    for (i, n) in g.node.enumerated() {
      var attrs: [String: Attribute] = [:]
      for a in n.attribute {
        attrs[a.name] = try attribute(a, node: n.name.isEmpty ? "\(n.opType) #\(i)" : n.name, limits: limits)
      }
      let node = Node(
        name: n.name.isEmpty ? "\(n.opType)_\(i)" : n.name, opType: n.opType, domain: n.domain, inputs: n.input,
        outputs: n.output, attributes: attrs)
      // Constant nodes become constants (as Paddle exports keep every weight in them).
      if node.opType == "Constant", node.domain == "" || node.domain == "ai.onnx" {
        guard node.outputs.count == 1 else { throw ModelError(node: node, "a Constant needs exactly one output") }
        try addConstant(node.outputs[0], try constantValue(node), "a Constant node")
        continue
      }
      nodes.append(node)
    }
    let inputs = try g.input.filter { constants[$0.name] == nil }.map { (v) throws(ModelError) in try valueInfo(v) }
    let outputs = try g.output.map { (v) throws(ModelError) in try valueInfo(v) }
    let sorted = try validateAndSort(
      nodes: nodes, inputs: Set(inputs.map(\.name)), constants: Set(constants.keys), outputs: outputs)
    return Graph(
      name: g.name, inputs: inputs, outputs: outputs, nodes: sorted, constants: constants, opset: opset)
  }

  /// A sparse tensor made dense; indices are `[nnz, rank]` or linearised `[nnz]` (ONNX allows both).
  static func densify(_ s: Onnx_SparseTensorProto, limits: Limits) throws(ModelError) -> Tensor {
    let name = s.values.name
    let values = try Tensor(onnx: s.values, maxElements: limits.maxTensorElements)
    let shape = s.dims.map { Int(clamping: $0) }
    let count: Int
    do { count = try Tensor.elementCount(shape) } catch {
      throw ModelError("sparse initializer '\(name)': \(error.message)")
    }
    guard count <= limits.maxTensorElements else {
      throw ModelError("sparse initializer '\(name)' has \(count) elements, over the limit")
    }
    guard values.rank == 1, case .float32(let vals) = values.storage else {
      throw ModelError("sparse initializer '\(name)': only 1-D FLOAT values are supported")
    }
    let idx = try Tensor(onnx: s.indices, maxElements: limits.maxTensorElements).int64s
    let nnz = vals.count
    var linear = [Int](repeating: 0, count: nnz)
    if idx.count == nnz {
      for i in 0..<nnz { linear[i] = Int(clamping: idx[i]) }
    } else if idx.count == nnz * shape.count {
      for i in 0..<nnz {
        var l = 0
        for d in 0..<shape.count {
          let v = Int(clamping: idx[i * shape.count + d])
          guard v >= 0, v < shape[d] else {
            throw ModelError("sparse initializer '\(name)': index \(v) out of range for dimension \(d) of \(shape)")
          }
          l = l * shape[d] + v
        }
        linear[i] = l
      }
    } else {
      throw ModelError("sparse initializer '\(name)': \(idx.count) indices for \(nnz) values of rank \(shape.count)")
    }
    var dense = [Float](repeating: 0, count: count)
    for i in 0..<nnz {
      guard linear[i] >= 0, linear[i] < count else {
        throw ModelError("sparse initializer '\(name)': index \(linear[i]) out of range for shape \(shape)")
      }
      dense[linear[i]] = vals[i]
    }
    return Tensor(checkedShape: shape, storage: .float32(dense))
  }

  static func constantValue(_ node: Node) throws(ModelError) -> Tensor {
    guard node.attributes.count == 1, let (key, value) = node.attributes.first else {
      throw ModelError(node: node, "a Constant needs exactly one value attribute")
    }
    switch (key, value) {
    case ("value", .tensor(let t)): return t
    case ("value_float", .float(let f)): return Tensor(checkedShape: [], storage: .float32([f]))
    case ("value_floats", .floats(let f)): return Tensor(checkedShape: [f.count], storage: .float32(f))
    case ("value_int", .int(let i)): return Tensor(checkedShape: [], storage: .int64([i]))
    case ("value_ints", .ints(let i)): return Tensor(checkedShape: [i.count], storage: .int64(i))
    default: throw ModelError(node: node, "Constant attribute '\(key)' is not supported")
    }
  }

  static func attribute(_ a: Onnx_AttributeProto, node: String, limits: Limits) throws(ModelError) -> Attribute {
    // Old exporters leave `type` unset: infer it from the field that holds a value.
    var type = a.type
    if type == .undefined {
      if a.hasT { type = .tensor } else if !a.ints.isEmpty { type = .ints } else if !a.floats.isEmpty {
        type = .floats
      } else if a.hasS { type = .string } else if a.hasF { type = .float } else if a.hasI { type = .int }
    }
    switch type {
    case .int: return .int(a.i)
    case .float: return .float(a.f)
    case .string: return .string(String(decoding: a.s, as: UTF8.self))
    case .ints: return .ints(a.ints)
    case .floats: return .floats(a.floats)
    case .strings: return .strings(a.strings.map { String(decoding: $0, as: UTF8.self) })
    case .tensor:
      do { return .tensor(try Tensor(onnx: a.t, maxElements: limits.maxTensorElements)) } catch {
        throw ModelError("node '\(node)', attribute '\(a.name)': \(error.message)")
      }
    case .sparseTensor:
      do { return .tensor(try densify(a.sparseTensor, limits: limits)) } catch {
        throw ModelError("node '\(node)', attribute '\(a.name)': \(error.message)")
      }
    default: return .unsupported("\(type)")
    }
  }

  static func valueInfo(_ v: Onnx_ValueInfoProto) throws(ModelError) -> ValueInfo {
    guard !v.name.isEmpty else { throw ModelError("a graph input or output has no name") }
    guard case .tensorType(let tt)? = v.type.value else { return ValueInfo(name: v.name) }
    let shape: [Dim]? = tt.hasShape
      ? try tt.shape.dim.map { (d) throws(ModelError) -> Dim in
        switch d.value {
        case .dimValue(let n)?:
          // Paddle's exporter writes -1 for a dynamic dimension.
          return n >= 0 ? .fixed(Int(clamping: n)) : .symbolic("")
        case .dimParam(let s)?: return .symbolic(s)
        case nil: return .symbolic("")
        }
      } : nil
    return ValueInfo(name: v.name, dtype: ONNXDataType.dtype(tt.elemType), shape: shape)
  }

  /// Checks that every value is defined once and every use is defined, and returns the nodes in
  /// a topological order.
  static func validateAndSort(
    nodes: [Node], inputs: Set<String>, constants: Set<String>, outputs: [ValueInfo]
  ) throws(ModelError) -> [Node] {
    var producer: [String: Int] = [:]
    for (i, n) in nodes.enumerated() {
      for o in n.outputs where !o.isEmpty {
        if producer[o] != nil || inputs.contains(o) || constants.contains(o) {
          throw ModelError(node: n, "output '\(o)' is already defined elsewhere in the graph")
        }
        producer[o] = i
      }
    }
    var indegree = [Int](repeating: 0, count: nodes.count)
    var users = [[Int]](repeating: [], count: nodes.count)
    for (i, n) in nodes.enumerated() {
      for name in n.inputs where !name.isEmpty {
        if let p = producer[name] {
          indegree[i] += 1
          users[p].append(i)
        } else if !inputs.contains(name) && !constants.contains(name) {
          throw ModelError(node: n, "input '\(name)' is not produced by any node, graph input or constant")
        }
      }
    }
    for o in outputs where producer[o.name] == nil && !inputs.contains(o.name) && !constants.contains(o.name) {
      throw ModelError("graph output '\(o.name)' is not produced by any node")
    }
    // Kahn's algorithm: any valid order will do; nodes with no pending inputs go first.
    var ready = (0..<nodes.count).filter { indegree[$0] == 0 }
    var order: [Node] = []
    order.reserveCapacity(nodes.count)
    var head = 0
    while head < ready.count {
      let i = ready[head]
      head += 1
      order.append(nodes[i])
      for u in users[i] {
        indegree[u] -= 1
        if indegree[u] == 0 { ready.append(u) }
      }
    }
    if order.count != nodes.count, let stuck = indegree.firstIndex(where: { $0 > 0 }) {
      throw ModelError(node: nodes[stuck], "the graph has a cycle through this node")
    }
    return order
  }
}
