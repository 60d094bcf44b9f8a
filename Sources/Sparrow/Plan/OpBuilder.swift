/// What an op builder sees at plan time: the node, its inputs' types (and values, where they
/// are constants), and the plan's options. It records its outputs' types.
struct BuildContext {
  let node: Node
  let opset: Int
  /// nil for an absent optional input.
  let inputs: [TensorType?]
  /// Values of constant inputs (weights, shapes, axes).
  let constants: [Tensor?]
  let options: PlanOptions
  private(set) var outputs: [TensorType] = []
  /// Filled by builders of weighted ops (Conv, Gemm, MatMul) for `inspect`.
  var layer: LayerReport?

  init(node: Node, opset: Int, inputs: [TensorType?], constants: [Tensor?], options: PlanOptions) {
    self.node = node
    self.opset = opset
    self.inputs = inputs
    self.constants = constants
    self.options = options
  }

  func error(_ message: String) -> ModelError { ModelError(node: node, message) }

  /// The most bytes one tensor of the plan may take (`PlanOptions.maxBytes`, `maxTensorBytes`).
  var tensorLimit: Int { min(options.maxBytes, options.maxTensorBytes) }

  /// An error for a tensor over `tensorLimit`: the inputs ask for too much, the model is fine.
  func overLimit(_ message: String) -> ModelError {
    var e = error("\(message), over the plan's limit of \(tensorLimit) bytes")
    e.overLimit = true
    return e
  }

  /// The type of input `i`, which must be present.
  func input(_ i: Int) throws(ModelError) -> TensorType {
    guard i < inputs.count, let t = inputs[i] else { throw error("input \(i) is required") }
    return t
  }

  func hasInput(_ i: Int) -> Bool { i < inputs.count && inputs[i] != nil }

  /// The value of constant input `i`, or nil when it is computed at run time.
  func constant(_ i: Int) -> Tensor? { i < constants.count ? constants[i] : nil }

  /// The value of input `i`, which must be a constant (shapes, axes, weights).
  func requireConstant(_ i: Int, _ what: String) throws(ModelError) -> Tensor {
    guard let t = constant(i) else { throw error("\(what) (input \(i)) must be a constant") }
    return t
  }

  /// The value of input `i`, on which the output's shape depends, so it must be known at plan
  /// time: a constant, computed from constants and shapes, or from the values of plan-time inputs
  /// (`ShapeInputs`). `i` must be among the builder's `shapeInputs`.
  func planTimeConstant(_ i: Int, _ what: String) throws(ModelError) -> Tensor {
    guard let t = constant(i) else {
      throw error(
        "\(what) (input \(i)) must be known at plan time, as the output's shape depends on its values, but it depends on run-time data; Sparrow plans per input shape and value of shape inputs (int64/int32 graph inputs)"
      )
    }
    return t
  }

  /// Records the outputs' types, refusing shapes a hostile model could use to overflow or
  /// exhaust memory (negative or overflowing dimensions, more bytes than the plan allows) before
  /// any builder computes strides or tables from them.
  mutating func setOutputs(_ types: [TensorType]) throws(ModelError) {
    guard types.count >= node.outputs.filter({ !$0.isEmpty }).count || types.count == node.outputs.count else {
      throw error("produces \(types.count) outputs, the node names \(node.outputs.count)")
    }
    for t in types {
      guard t.shape.allSatisfy({ $0 >= 0 }), (try? Tensor.elementCount(t.shape)) != nil else {
        throw error("output shape \(t.shape) is invalid (negative or overflowing)")
      }
      guard t.bytes <= tensorLimit else { throw overLimit("output \(t) needs \(t.bytes) bytes") }
    }
    outputs = types
  }

  // Typed attribute access: a missing attribute gives the default, a wrongly typed one an error.
  func int(_ name: String, _ def: Int) throws(ModelError) -> Int {
    switch node.attributes[name] {
    case nil: return def
    case .int(let v)?: return Int(clamping: v)
    default: throw error("attribute '\(name)' must be an int")
    }
  }
  func float(_ name: String, _ def: Float) throws(ModelError) -> Float {
    switch node.attributes[name] {
    case nil: return def
    case .float(let v)?: return v
    case .int(let v)?: return Float(v)
    default: throw error("attribute '\(name)' must be a float")
    }
  }
  func ints(_ name: String) throws(ModelError) -> [Int]? {
    switch node.attributes[name] {
    case nil: return nil
    case .ints(let v)?: return v.map { Int(clamping: $0) }
    case .int(let v)?: return [Int(clamping: v)]
    default: throw error("attribute '\(name)' must be a list of ints")
    }
  }
  func floats(_ name: String) throws(ModelError) -> [Float]? {
    switch node.attributes[name] {
    case nil: return nil
    case .floats(let v)?: return v
    default: throw error("attribute '\(name)' must be a list of floats")
    }
  }
  func string(_ name: String, _ def: String) throws(ModelError) -> String {
    switch node.attributes[name] {
    case nil: return def
    case .string(let v)?: return v
    default: throw error("attribute '\(name)' must be a string")
    }
  }

  /// Normalises an axis in [-rank, rank) to [0, rank).
  func axis(_ a: Int, rank: Int) throws(ModelError) -> Int {
    let r = a < 0 ? a + rank : a
    guard r >= 0, r < rank else { throw error("axis \(a) is out of range for rank \(rank)") }
    return r
  }
}

/// Builds the step for one ONNX op type. One file per op family under Runtime/Ops/.
protocol OpBuilder: Sendable {
  /// ONNX op types (default domain) this builder handles.
  static var opTypes: [String] { get }
  /// Checks attributes and input types, sets the output types, returns the step.
  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step
  /// Inputs whose values (not just shapes) decide the outputs' shapes, read with
  /// `planTimeConstant`: graph inputs that reach them become plan-time inputs (`ShapeInputs`).
  static var shapeInputs: [Int] { get }
}

extension OpBuilder {
  static var shapeInputs: [Int] { [] }
}
