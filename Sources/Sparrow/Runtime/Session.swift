import Dispatch

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
  /// The threshold gate's calibration (`GateCalibration.calibrate`), needed by `.threshold`.
  public var gateCalibration: GateCalibration?
  /// Set by `GateCalibration.calibrate`: gated linear layers record their inputs.
  var recorder: GateRecorder?
  /// The MatMul/Gemm nodes planned for the input gate.
  public var gatedLinearNodes: [String] { plan.steps.compactMap { ($0.gated as? GatedLinearStep)?.node } }

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
    try bind(inputs.keys, type: { inputs[$0].map { TensorType($0.dtype, $0.shape) } }, value: { inputs[$0] }) { name, p in
      write(inputs[name]!, to: p)
    }
    try execute()
    var out: [String: Tensor] = [:]
    for (name, id) in plan.outputIds { out[name] = Plan.tensor(store.buffers[id]!, plan.types[id]) }
    return out
  }

  /// Runs the model on inputs in the caller's memory, each copied once into the plan's buffers,
  /// then calls `body` with each output named in `outputs` (in that order) and its planned buffer,
  /// which is valid only during the call: the next run overwrites it. The C ABI (SparrowC) copies
  /// it once into memory its caller owns.
  public func run(
    raw inputs: [String: RawTensor], outputs: [String],
    _ body: (Int, TensorType, UnsafeRawBufferPointer) throws(RuntimeError) -> Void
  ) throws(RuntimeError) {
    var ids: [Int] = []
    for name in outputs {
      guard let id = plan.outputIds.first(where: { $0.name == name })?.id else {
        throw RuntimeError("the model has no output '\(name)' (outputs: \(plan.outputIds.map(\.name).joined(separator: ", ")))")
      }
      ids.append(id)
    }
    for (name, t) in inputs {
      let n = TensorType(t.dtype, t.shape).count
      let (want, overflow) = n.multipliedReportingOverflow(by: t.dtype.size)
      guard !overflow, t.bytes.count == want else {
        throw RuntimeError("input '\(name)': \(t.bytes.count) bytes for shape \(t.shape) of \(t.dtype), which needs \(n) elements")
      }
    }
    try bind(
      inputs.keys, type: { inputs[$0].map { TensorType($0.dtype, $0.shape) } },
      value: { name in inputs[name].flatMap { try? Tensor(shape: $0.shape, dtype: $0.dtype, bytes: $0.bytes) } }
    ) { name, p in
      let b = inputs[name]!.bytes
      if let base = b.baseAddress { p.copyMemory(from: base, byteCount: b.count) }
    }
    try execute()
    for (i, id) in ids.enumerated() {
      let type = plan.types[id]
      try body(i, type, UnsafeRawBufferPointer(start: store.buffers[id]!, count: type.bytes))
    }
  }

  /// Checks the given inputs' names, types and shapes (and the values of plan-time inputs, read
  /// with `value` only for those) against the plan, then writes each into its buffer.
  private func bind(
    _ names: some Sequence<String>, type: (String) -> TensorType?, value: (String) -> Tensor?,
    write: (String, UnsafeMutableRawPointer) -> Void
  ) throws(RuntimeError) {
    for (name, id) in plan.inputIds {
      guard let t = type(name) else { throw RuntimeError("input '\(name)' is missing") }
      let want = plan.types[id]
      guard t.shape == want.shape else {
        throw RuntimeError("input '\(name)' has shape \(t.shape), the plan expects \(want.shape)")
      }
      guard t.dtype == want.dtype else {
        throw RuntimeError("input '\(name)' is \(t.dtype), the model expects \(want.dtype)")
      }
    }
    for name in names where !plan.inputIds.contains(where: { $0.name == name }) {
      throw RuntimeError("the model has no input '\(name)'")
    }
    for (name, v) in plan.inputValues {
      let given = value(name)
      if given != v {
        throw RuntimeError(
          "input '\(name)' is \(given?.int64s ?? []), this plan was made for \(v.int64s): the model's shapes depend on it, so plan for the new value (Model.run does)")
      }
    }
    for (name, id) in plan.inputIds { write(name, store.buffers[id]!) }
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

  /// Why the gate in force cannot run on this plan, or nil: the threshold gate needs MatMul/Gemm
  /// layers planned for the gate (never a silent no-op) and a calibration for each of them.
  public func gateProblem(_ mode: GateMode? = nil) -> String? {
    let mode = mode ?? gate
    guard case .threshold = mode else { return nil }
    let nodes = gatedLinearNodes
    guard let first = nodes.first else {
      return "gate \(mode): this model has no MatMul/Gemm layer with a constant weight planned for the gate"
    }
    guard let cal = gateCalibration else {
      return "gate \(mode) needs a calibration: give calibration inputs (--calibration NAME=FILE.npy)"
    }
    if let missing = nodes.first(where: { cal.quantiles[$0] == nil }) {
      return "gate \(mode): layer '\(missing)' has no calibrated threshold (calibrated: \(cal.quantiles.count) of \(nodes.count) layers, e.g. '\(first)')"
    }
    return nil
  }

  func execute() throws(RuntimeError) {
    if let problem = gateProblem() { throw RuntimeError(problem) }
    gateLog.beginRun()
    for (i, s) in plan.steps.enumerated() {
      let c = StepContext(
        store: store, inputIds: s.inputIds, outputIds: s.outputIds, inputTypes: s.inputTypes,
        outputTypes: s.outputTypes, scratch: s.step.scratchBytes > 0 ? scratch : nil, threads: plan.options.threads)
      let t0 = profiling ? DispatchTime.now().uptimeNanoseconds : 0
      do {
        if let g = s.gated {
          try g.run(
            c, gate: GateRun(mode: gate, log: gateLog, step: i, calibration: gateCalibration, recorder: recorder))
        } else {
          try s.step.run(c)
        }
      } catch { throw RuntimeError("\(s.node.label): \(error.message)") }
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

/// An input in the caller's memory: element type, shape and exactly its bytes (row-major,
/// booleans one byte each, 0 or 1), read only during the run it is given to.
public struct RawTensor {
  public var dtype: DType
  public var shape: [Int]
  public var bytes: UnsafeRawBufferPointer
  public init(dtype: DType, shape: [Int], bytes: UnsafeRawBufferPointer) {
    self.dtype = dtype
    self.shape = shape
    self.bytes = bytes
  }
}
