/// A dimension of a declared shape: a number, or a name to be resolved from the inputs.
public enum Dim: Sendable, Hashable, CustomStringConvertible {
  case fixed(Int)
  case symbolic(String)
  public var description: String {
    switch self {
    case .fixed(let n): return String(n)
    case .symbolic(let s): return s.isEmpty ? "?" : s
    }
  }
}

/// A graph input or output as declared: its name, element type and shape (when known).
public struct ValueInfo: Sendable, Hashable {
  public var name: String
  public var dtype: DType?
  public var shape: [Dim]?
  public init(name: String, dtype: DType? = nil, shape: [Dim]? = nil) {
    self.name = name
    self.dtype = dtype
    self.shape = shape
  }
}

/// An attribute value as stored in the model. Ops read them through typed structs.
public enum Attribute: Sendable, Equatable {
  case int(Int64)
  case float(Float)
  case string(String)
  case ints([Int64])
  case floats([Float])
  case strings([String])
  case tensor(Tensor)
  /// Kinds Sparrow does not interpret (sub-graphs, type protos): kept by name for `inspect`.
  case unsupported(String)
}

/// One operation. Inputs name values; an empty name is an absent optional input.
public struct Node: Sendable, Equatable {
  public var name: String
  public var opType: String
  public var domain: String
  public var inputs: [String]
  public var outputs: [String]
  public var attributes: [String: Attribute]
  public init(
    name: String, opType: String, domain: String = "", inputs: [String], outputs: [String],
    attributes: [String: Attribute] = [:]
  ) {
    self.name = name
    self.opType = opType
    self.domain = domain
    self.inputs = inputs
    self.outputs = outputs
    self.attributes = attributes
  }

  /// "Conv 'layer1.conv'" for error messages.
  public var label: String { name.isEmpty ? opType : "\(opType) '\(name)'" }
}

/// A model as Sparrow holds it: nodes in topological order, every constant (initializers,
/// `Constant` nodes, sparse initializers) as a tensor by name.
public struct Graph: Sendable {
  public var name: String
  /// Inputs the caller supplies (graph inputs that are not constants).
  public var inputs: [ValueInfo]
  public var outputs: [ValueInfo]
  public var nodes: [Node]
  public var constants: [String: Tensor]
  /// Opset of the default ONNX domain.
  public var opset: Int
  /// Model metadata carried through export (producer, IR version).
  public var producer: String
  public var irVersion: Int

  public init(
    name: String = "graph", inputs: [ValueInfo], outputs: [ValueInfo], nodes: [Node],
    constants: [String: Tensor] = [:], opset: Int, producer: String = "sparrow", irVersion: Int = 8
  ) {
    self.name = name
    self.inputs = inputs
    self.outputs = outputs
    self.nodes = nodes
    self.constants = constants
    self.opset = opset
    self.producer = producer
    self.irVersion = irVersion
  }
}

/// An error about a model: what is wrong, and where (node, op, input) when that is known.
public struct ModelError: Error, CustomStringConvertible, Sendable, Equatable {
  public let message: String
  /// The model is fine but these inputs would need more memory than the plan allows
  /// (`PlanOptions.maxBytes`, `maxTensorBytes`): a server answers 413, not 400.
  public var overLimit = false
  public init(_ message: String) { self.message = message }
  public init(node: Node, _ message: String) { self.message = "\(node.label): \(message)" }
  public var description: String { message }
}
