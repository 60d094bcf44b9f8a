/// One planned step: the op's step and the value ids it reads and writes.
struct PlannedStep: Sendable {
  let step: any Step
  let node: Node
  let inputIds: [Int]
  let outputIds: [Int]
  let inputTypes: [TensorType?]
  let outputTypes: [TensorType]
  /// `step` when the runtime gate wraps it: the session hands it the run's gate (decided here
  /// once, not looked up per run).
  let gated: (any GateStep)?

  init(step: any Step, node: Node, inputIds: [Int], outputIds: [Int], inputTypes: [TensorType?], outputTypes: [TensorType]) {
    self.step = step
    self.node = node
    self.inputIds = inputIds
    self.outputIds = outputIds
    self.inputTypes = inputTypes
    self.outputTypes = outputTypes
    gated = step as? any GateStep
  }

  /// The same node and values, computed by `step` (a pass changed how).
  func replacingStep(_ step: any Step) -> PlannedStep {
    PlannedStep(
      step: step, node: node, inputIds: inputIds, outputIds: outputIds, inputTypes: inputTypes, outputTypes: outputTypes)
  }
}

extension [PlannedStep] {
  /// For each value id: how many step inputs read it, and the last step (index) that does. The
  /// fusion passes (FusedAttentionStep, LinearChain) fuse a producer only into a sole reader.
  func readers() -> (reads: [Int: Int], lastReader: [Int: Int]) {
    var reads: [Int: Int] = [:], reader: [Int: Int] = [:]
    for (i, s) in enumerated() {
      for id in s.inputIds where id >= 0 {
        reads[id, default: 0] += 1
        reader[id] = i
      }
    }
    return (reads, reader)
  }
}

/// A model planned for one set of concrete input shapes: immutable, shared by every session.
/// Weights are packed once here; constants (and everything computed from constants alone) are
/// folded at plan time.
public final class Plan: @unchecked Sendable {
  public let graph: Graph
  public let options: PlanOptions
  let steps: [PlannedStep]
  /// Every value's type, by id.
  let types: [TensorType]
  /// Values known at plan time, by id: kept in read-only buffers the sessions point at.
  let constantBuffers: [Int: UnsafeMutableRawPointer]
  let inputIds: [(name: String, id: Int)]
  let outputIds: [(name: String, id: Int)]
  /// The plan-time inputs' values this plan was made for (`ShapeInputs`), checked on every run.
  let inputValues: [(name: String, value: Tensor)]
  /// Weighted layers: format, kernel and measured alternatives.
  public let layers: [LayerReport]
  /// Where sessions keep run-time values (one arena, reused across lifetimes) and scratch.
  let memory: MemoryPlan

  init(
    graph: Graph, options: PlanOptions, steps: [PlannedStep], types: [TensorType], constants: [Int: Tensor],
    inputIds: [(String, Int)], outputIds: [(String, Int)], inputValues: [String: Tensor], layers: [LayerReport]
  ) {
    self.graph = graph
    self.options = options
    self.steps = steps
    self.types = types
    var buffers: [Int: UnsafeMutableRawPointer] = [:]
    for (id, t) in constants { buffers[id] = Plan.copy(t) }
    self.constantBuffers = buffers
    self.inputIds = inputIds.map { (name: $0.0, id: $0.1) }
    self.outputIds = outputIds.map { (name: $0.0, id: $0.1) }
    self.inputValues = inputValues.sorted { $0.key < $1.key }.map { (name: $0.key, value: $0.value) }
    self.layers = layers
    memory = MemoryPlan(
      steps: steps, types: types, inputIds: inputIds.map(\.1), outputIds: outputIds.map(\.1),
      constants: Set(constants.keys))
  }

  deinit { for p in constantBuffers.values { p.deallocate() } }

  /// Each step's node name and op type, in run order (`Session.stepProfile` is indexed alike).
  public var stepNodes: [(name: String, op: String)] { steps.map { ($0.node.name, $0.node.opType) } }

  /// The declared inputs with their planned types.
  public var inputs: [(name: String, type: TensorType)] { inputIds.map { ($0.name, types[$0.id]) } }
  public var outputs: [(name: String, type: TensorType)] { outputIds.map { ($0.name, types[$0.id]) } }
  /// The values of plan-time inputs (`ShapeInputs`) this plan was made for: it runs only on them.
  public var values: [String: Tensor] { Dictionary(uniqueKeysWithValues: inputValues.map { ($0.name, $0.value) }) }

  /// Bytes a session allocates: its value arena and scratch.
  public var sessionBytes: Int { memory.arenaBytes.addingSaturating(memory.scratchBytes) }

  static func copy(_ t: Tensor) -> UnsafeMutableRawPointer {
    let p = UnsafeMutableRawPointer.allocate(byteCount: max(t.count * t.dtype.size, 1), alignment: 64)
    t.withUnsafeBytes { if let b = $0.baseAddress { p.copyMemory(from: b, byteCount: $0.count) } }
    return p
  }

  /// Reads a buffer back into a tensor.
  static func tensor(_ p: UnsafeRawPointer, _ type: TensorType) -> Tensor {
    Tensor(validShape: type.shape, dtype: type.dtype, bytes: UnsafeRawBufferPointer(start: p, count: type.bytes))
  }
}
