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

/// What a fusion pass folded into a node's output: the node's own step computes it after the
/// op, clamp first, then scale and shift. Typed here, never an ONNX attribute: ONNX has no
/// spelling for it, so the ONNX writer refuses a node that carries one.
public struct FusedEpilogue: Sendable, Equatable {
  /// A fused Relu or Clip: the output clamped to this range (FuseActivation).
  public var clamp: ClosedRange<Float>?
  /// `y · scale + shift` by constants that followed the op (FuseHardSwish).
  public var affine: Affine?
  /// The index of the node's input holding a per-channel vector computed at run time that the
  /// output is multiplied by, last (a learned gate, FuseLearnedGate).
  public var learnedGate: Int?
  /// A per-output-channel constant added to the product before the clamp and the GELU (a
  /// MatMul's following `Add(bias)`, FuseLinearBias).
  public var bias: [Float]?
  /// A fused Gelu after the bias (FuseActivation): `x · Φ(x)`, exact or its tanh form.
  public var gelu: GeluForm?

  public enum GeluForm: Sendable, Equatable { case exact, tanh }

  /// A Softmax over the last axis that absorbed the scaling and the mask add before it
  /// (FuseMaskedSoftmax): it computes `softmax(x · scale + mask)`, the mask (broadcast to x) being
  /// the node's input 1 when `masked`. Not an output epilogue, but like one it has no ONNX
  /// spelling.
  public var softmaxInput: SoftmaxInput?

  /// Transposes folded into an activation×activation MatMul (FoldMatMulTranspose): it reads A
  /// and B as their Transposes by `a` and `b` would have written them, and writes its product
  /// as a Transpose by `out` of it would have (nil: as stored).
  public var matmulViews: MatMulViews?

  /// A QLinearConv/QLinearMatMul written by FuseQDQ for a layer whose output is not quantized:
  /// without y_scale and y_zero_point (inputs 6 and 7 empty) it writes float32, the product
  /// dequantized, (acc + bias) · x_scale · w_scale, then the clamp.
  public var dequantizedOutput = false

  /// A `GateScore` node (FuseGateScore): a learned gate's sub-graph (global average pool, FC,
  /// clamp, top-k mask, multiply) as one op. Not an output epilogue either; it marks an op ONNX
  /// has no spelling for.
  public var gateScore = false

  public struct MatMulViews: Sendable, Equatable {
    public var a: [Int]?
    public var b: [Int]?
    public var out: [Int]?
    public init(a: [Int]? = nil, b: [Int]? = nil, out: [Int]? = nil) {
      self.a = a
      self.b = b
      self.out = out
    }
  }

  public struct SoftmaxInput: Sendable, Equatable {
    public var scale: Float
    public var masked: Bool
    public init(scale: Float, masked: Bool) {
      self.scale = scale
      self.masked = masked
    }
  }

  public struct Affine: Sendable, Equatable {
    public var scale: Float
    public var shift: Float
    public init(scale: Float, shift: Float) {
      self.scale = scale
      self.shift = shift
    }
  }

  public init(
    clamp: ClosedRange<Float>? = nil, affine: Affine? = nil, learnedGate: Int? = nil, bias: [Float]? = nil,
    gelu: GeluForm? = nil
  ) {
    self.clamp = clamp
    self.affine = affine
    self.learnedGate = learnedGate
    self.bias = bias
    self.gelu = gelu
  }

  /// Nothing fused.
  public var isEmpty: Bool {
    clamp == nil && affine == nil && learnedGate == nil && bias == nil && gelu == nil && softmaxInput == nil
      && matmulViews == nil && !dequantizedOutput && !gateScore
  }
  /// Nothing fused after the product but a bias: an activation may still fuse.
  var takesActivation: Bool {
    clamp == nil && affine == nil && learnedGate == nil && gelu == nil && softmaxInput == nil && matmulViews == nil
      && !dequantizedOutput && !gateScore
  }
  /// The clamp's bounds, (-inf, inf) when there is none: what the kernels' epilogue takes.
  var bounds: (lo: Float, hi: Float) { clamp.map { ($0.lowerBound, $0.upperBound) } ?? (-.infinity, .infinity) }
}

/// One operation. Inputs name values; an empty name is an absent optional input.
public struct Node: Sendable, Equatable {
  public var name: String
  public var opType: String
  public var domain: String
  public var inputs: [String]
  public var outputs: [String]
  public var attributes: [String: Attribute]
  /// What the passes fused into this node (empty for nodes as imported).
  public var epilogue: FusedEpilogue
  public init(
    name: String, opType: String, domain: String = "", inputs: [String], outputs: [String],
    attributes: [String: Attribute] = [:], epilogue: FusedEpilogue = FusedEpilogue()
  ) {
    self.name = name
    self.opType = opType
    self.domain = domain
    self.inputs = inputs
    self.outputs = outputs
    self.attributes = attributes
    self.epilogue = epilogue
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
