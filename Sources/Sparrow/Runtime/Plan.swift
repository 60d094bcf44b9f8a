import Dispatch

/// One planned step: the op's step and the value ids it reads and writes.
struct PlannedStep: Sendable {
  let step: any Step
  let node: Node
  let inputIds: [Int]
  let outputIds: [Int]
  let inputTypes: [TensorType?]
  let outputTypes: [TensorType]
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

/// Runs a plan. Owns its buffers and scratch; one caller at a time.
public final class Session {
  public let plan: Plan
  let store: ValueStore
  let arena: UnsafeMutableRawPointer
  let scratch: UnsafeMutableRawPointer?
  /// The runtime gate's mode for the following runs (DESIGN.md, "Runtime-pruning gate").
  public var gate: GateMode = .off
  /// What the gate skipped, per gated layer, summed over runs.
  public let gateLog: GateLog

  public init(plan: Plan) {
    self.plan = plan
    gateLog = GateLog(plan: plan)
    store = ValueStore(count: plan.types.count)
    for (id, p) in plan.constantBuffers { store.buffers[id] = p }
    arena = UnsafeMutableRawPointer.allocate(byteCount: max(plan.memory.arenaBytes, 1), alignment: MemoryPlan.alignment)
    for (id, offset) in plan.memory.offsets where store.buffers[id] == nil { store.buffers[id] = arena + offset }
    scratch = plan.memory.scratchBytes > 0
      ? UnsafeMutableRawPointer.allocate(byteCount: plan.memory.scratchBytes, alignment: 64) : nil
  }

  deinit {
    arena.deallocate()
    scratch?.deallocate()
  }

  /// Runs the model. Every planned input must be given with its planned type and shape.
  public func run(_ inputs: [String: Tensor]) throws(RuntimeError) -> [String: Tensor] {
    for (name, id) in plan.inputIds {
      guard let t = inputs[name] else { throw RuntimeError("input '\(name)' is missing") }
      let want = plan.types[id]
      guard t.shape == want.shape else {
        throw RuntimeError("input '\(name)' has shape \(t.shape), the plan expects \(want.shape)")
      }
      guard t.dtype == want.dtype else {
        throw RuntimeError("input '\(name)' is \(t.dtype), the model expects \(want.dtype)")
      }
      write(t, to: store.buffers[id]!)
    }
    for name in inputs.keys where !plan.inputIds.contains(where: { $0.name == name }) {
      throw RuntimeError("the model has no input '\(name)'")
    }
    for (name, value) in plan.inputValues where inputs[name] != value {
      throw RuntimeError(
        "input '\(name)' is \(inputs[name]?.int64s ?? []), this plan was made for \(value.int64s): the model's shapes depend on it, so plan for the new value (Model.run does)")
    }
    try execute()
    var out: [String: Tensor] = [:]
    for (name, id) in plan.outputIds { out[name] = Plan.tensor(store.buffers[id]!, plan.types[id]) }
    return out
  }

  /// When true, `run` adds each step's wall time to `profile` (by op type).
  public var profiling = false
  /// Milliseconds spent per op type over the profiled runs, and step counts.
  public private(set) var profile: [String: (ms: Double, steps: Int)] = [:]
  /// Milliseconds spent per step over the profiled runs (`Plan.stepNodes` names them).
  public private(set) lazy var stepProfile = [Double](repeating: 0, count: plan.steps.count)

  /// Clears `profile` and `stepProfile`.
  public func resetProfile() {
    profile = [:]
    for i in stepProfile.indices { stepProfile[i] = 0 }
  }

  func execute() throws(RuntimeError) {
    gateLog.beginRun()
    for (i, s) in plan.steps.enumerated() {
      let c = StepContext(
        store: store, inputIds: s.inputIds, outputIds: s.outputIds, inputTypes: s.inputTypes,
        outputTypes: s.outputTypes, scratch: s.step.scratchBytes > 0 ? scratch : nil, threads: plan.options.threads,
        gate: gate, gateLog: gateLog, stepIndex: i)
      let t0 = profiling ? DispatchTime.now().uptimeNanoseconds : 0
      do { try s.step.run(c) } catch { throw RuntimeError("\(s.node.label): \(error.message)") }
      if profiling {
        let key = s.node.opType == "Conv" && s.step is DepthwiseConvStep ? "Conv(depthwise)" : s.node.opType
        let ms = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
        profile[key, default: (0, 0)].ms += ms
        profile[key, default: (0, 0)].steps += 1
        stepProfile[i] += ms
      }
    }
  }

  private func write(_ t: Tensor, to p: UnsafeMutableRawPointer) {
    t.withUnsafeBytes { if let b = $0.baseAddress { p.copyMemory(from: b, byteCount: $0.count) } }
  }
}
