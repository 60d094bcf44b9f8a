/// Turns a graph and concrete input shapes into a `Plan`.
public enum Planner {
  /// Op types the planner can build, by ONNX name (default domain).
  static let builders: [String: any OpBuilder.Type] = {
    var table: [String: any OpBuilder.Type] = [:]
    for b in OpRegistry.all { for name in b.opTypes { table[name] = b } }
    return table
  }()

  /// Whether Sparrow can run this node.
  public static func supports(_ node: Node) -> Bool {
    (node.domain == "" || node.domain == "ai.onnx") && builders[node.opType] != nil
  }

  /// Every op type the planner knows, sorted.
  public static var supportedOps: [String] { builders.keys.sorted() }

  /// Resolves each input's shape: `shapes` pins symbolic dimensions (or the whole shape).
  public static func inputTypes(_ g: Graph, shapes: [String: [Int]]) throws(ModelError) -> [String: TensorType] {
    var out: [String: TensorType] = [:]
    for v in g.inputs {
      let dtype = v.dtype ?? .float32
      if let given = shapes[v.name] {
        if let declared = v.shape {
          guard declared.count == given.count else {
            throw ModelError("input '\(v.name)' has rank \(declared.count) (\(declared)), given shape \(given)")
          }
          for (d, g) in zip(declared, given) {
            if case .fixed(let n) = d, n != g {
              throw ModelError("input '\(v.name)' has shape \(declared), given \(given)")
            }
          }
        }
        guard given.allSatisfy({ $0 > 0 }) else { throw ModelError("input '\(v.name)': dimensions must be positive") }
        out[v.name] = TensorType(dtype, given)
      } else if let declared = v.shape {
        var dims: [Int] = []
        for d in declared {
          guard case .fixed(let n) = d, n > 0 else {
            throw ModelError("input '\(v.name)' has shape \(declared) with a symbolic dimension: give its shape (e.g. --shape \(v.name)=1x3x224x224)")
          }
          dims.append(n)
        }
        out[v.name] = TensorType(dtype, dims)
      } else {
        throw ModelError("input '\(v.name)' declares no shape: give its shape")
      }
      guard (try? Tensor.elementCount(out[v.name]!.shape)) != nil else {
        throw ModelError("input '\(v.name)': shape overflows")
      }
    }
    return out
  }

  /// A plan for these input shapes and, where output shapes depend on input values (Reshape's
  /// shape given as a graph input...), the `values` of those plan-time inputs (`ShapeInputs`): the
  /// plan treats them as constants and runs only with inputs holding the same values. Values of
  /// other inputs are ignored.
  public static func plan(
    _ g: Graph, shapes: [String: [Int]] = [:], values: [String: Tensor] = [:], options: PlanOptions = PlanOptions()
  ) throws(ModelError) -> Plan {
    try plan(g, shapes: shapes, values: values, options: options, shapeInputs: ShapeInputs(g))
  }

  static func plan(
    _ g: Graph, shapes: [String: [Int]], values: [String: Tensor], options: PlanOptions, shapeInputs: ShapeInputs
  ) throws(ModelError) -> Plan {
    var ids: [String: Int] = [:]
    var types: [TensorType] = []
    var constants: [Int: Tensor] = [:]
    func newId(_ name: String, _ t: TensorType) -> Int {
      types.append(t)
      ids[name] = types.count - 1
      return types.count - 1
    }
    for (name, t) in g.constants.sorted(by: { $0.key < $1.key }) {
      constants[newId(name, TensorType(t.dtype, t.shape))] = t
    }
    let inTypes = try inputTypes(g, shapes: shapes)
    let inputValues = try shapeInputs.values(values, types: inTypes)
    var inputIds: [(String, Int)] = []
    var valueIds: Set<Int> = []
    for v in g.inputs {
      let id = newId(v.name, inTypes[v.name]!)
      inputIds.append((v.name, id))
      if let t = inputValues[v.name] {
        // A constant for folding, but sessions still write it like any input: steps may read it.
        constants[id] = t
        valueIds.insert(id)
      }
    }

    var steps: [PlannedStep] = []
    var layers: [LayerReport] = []
    var bytes = 0
    let gatedNodes = try options.gateLayers.select(in: g)
    var gatedLinears: Set<String> = []
    if options.gateLinears {
      gatedLinears = options.gateLayers.selectLinears(in: g)
    } else if case .named = options.gateLayers {
      gatedLinears = options.gateLayers.selectLinears(in: g)
    }
    var learnedGates = LearnedGates()
    func add(_ node: Node) throws(ModelError) {
      guard node.domain == "" || node.domain == "ai.onnx", let builder = builders[node.opType] else {
        throw ModelError(node: node, "op '\(node.domain.isEmpty ? "" : node.domain + ".")\(node.opType)' is not supported")
      }
      let inIds = node.inputs.map { $0.isEmpty ? -1 : (ids[$0] ?? -1) }
      let inTypes = inIds.map { $0 >= 0 ? types[$0] : nil }
      let inConsts = inIds.map { $0 >= 0 ? constants[$0] : nil }
      // A learned gate fused into a convolution (FuseLearnedGate): one gated step where the
      // shapes fit, the convolution and the Mul otherwise.
      var builtNode = node
      var outputGate: GateLists.Slot? = nil
      if let slot = node.epilogue.learnedGate {
        guard let stride = LearnedGates.outputGateStride(node, types: inTypes, constants: inConsts) else {
          for n in FuseLearnedGate.unfused(node, hidden: node.outputs[0] + "\u{1F}conv") { try add(n) }
          return
        }
        outputGate = (slot: slot, stride: stride)
        builtNode.inputs = Array(node.inputs.prefix(slot))
        builtNode.epilogue.learnedGate = nil
      }
      let builtCount = builtNode.inputs.count
      var ctx = BuildContext(
        node: builtNode, opset: g.opset, inputs: Array(inTypes.prefix(builtCount)),
        constants: Array(inConsts.prefix(builtCount)), options: options)
      var step = try builder.build(&ctx)
      var stepInIds = inIds, stepInTypes = inTypes
      if gatedNodes.contains(node.name), var gated = GatedStep.wrap(step) {
        gated.byInput = true
        step = gated
      }
      if gatedLinears.contains(node.name) {
        if let linear = step as? LinearStep, let w = GatedLinearStep.weight(node, constants: inConsts),
          let gated = GatedLinearStep(linear, node: node.name, w: w)
        {
          step = gated
        } else if case .named = options.gateLayers {
          throw ModelError(
            node: node, "the input gate cannot take this layer (it needs a constant weight and rows x K input: Gemm with transA = 0)")
        }
      }
      if let og = outputGate {
        guard var gated = GatedStep.wrap(step) else {
          // The convolution's step cannot take active channels (one input channel: depthwise).
          for n in FuseLearnedGate.unfused(node, hidden: node.outputs[0] + "\u{1F}conv") { try add(n) }
          return
        }
        gated.outputGate = og
        step = gated
      }
      if let read = learnedGates.readsGated(step, inputIds: stepInIds, inputTypes: stepInTypes, types: types) {
        (step, stepInIds, stepInTypes) = read
      }
      if var layer = ctx.layer, let info = (step as? any GateStep)?.gateInfo {
        layer.gate = info.kind
        ctx.layer = layer
      }
      let outTypes = ctx.outputs
      guard outTypes.count >= node.outputs.count else {
        throw ModelError(node: node, "names \(node.outputs.count) outputs, the op produces \(outTypes.count)")
      }
      for t in outTypes {
        guard (try? Tensor.elementCount(t.shape)) != nil, t.shape.allSatisfy({ $0 >= 0 }) else {
          throw ModelError(node: node, "output shape \(t.shape) is invalid")
        }
        bytes += t.bytes
      }
      guard bytes <= options.maxBytes else {
        var e = ModelError(node: node, "the plan needs more than \(options.maxBytes) bytes of buffers")
        e.overLimit = true
        throw e
      }
      let outIds = zip(node.outputs, outTypes).map { name, t in name.isEmpty ? -1 : newId(name, t) }
      let foldable = step is TypeOnlyStep
        || (!inIds.isEmpty && zip(inIds, inConsts).allSatisfy { id, c in id < 0 || c != nil })
      if foldable {
        // Everything this node reads is known: run it now and keep its outputs as constants.
        let store = ValueStore(count: types.count)
        for (id, c) in zip(inIds, inConsts) where id >= 0 && store.buffers[id] == nil {
          if let c { store.buffers[id] = Plan.copy(c) }  // once per value, even when read twice
        }
        for id in outIds where id >= 0 { store.allocate(id, bytes: types[id].bytes) }
        let scratch = step.scratchBytes > 0 ? UnsafeMutableRawPointer.allocate(byteCount: step.scratchBytes, alignment: 64) : nil
        defer {
          scratch?.deallocate()
          for id in Set(inIds) where id >= 0 { store.buffers[id]?.deallocate() }
        }
        let c = StepContext(
          store: store, inputIds: inIds, outputIds: outIds, inputTypes: inTypes, outputTypes: outTypes,
          scratch: scratch, threads: 1)
        do { try step.run(c) } catch { throw ModelError(node: node, "folding: \(error.message)") }
        for id in outIds where id >= 0 { constants[id] = Plan.tensor(store.buffers[id]!, types[id]) }
        bytes -= outTypes.reduce(0) { $0 + $1.bytes }
        return
      }
      if let l = ctx.layer { layers.append(l) }
      let planned = PlannedStep(
        step: step, node: node, inputIds: stepInIds, outputIds: outIds, inputTypes: stepInTypes, outputTypes: outTypes)
      if let id = outIds.first, id >= 0 { learnedGates.gatedOutput(id, of: planned) }
      steps.append(planned)
    }
    for node in g.nodes { try add(node) }
    var outputIds: [(String, Int)] = []
    for o in g.outputs {
      guard let id = ids[o.name] else { throw ModelError("graph output '\(o.name)' is never computed") }
      outputIds.append((o.name, id))
    }
    steps = FusedAttentionStep.fuse(steps, graphOutputs: Set(outputIds.map(\.1)))
    steps = LinearChain.rechoosePairs(steps, graphOutputs: Set(outputIds.map(\.1)), layers: &layers)
    steps = LinearChain.fuse(steps, graphOutputs: Set(outputIds.map(\.1)))
    steps = LinearChain.shareTransposedInputs(steps, types: &types)
    steps = ResidualJoin.fuse(steps, graphOutputs: Set(outputIds.map(\.1)))
    steps = GatedStep.spreadImages(steps, threads: options.threads)
    options.formatCache?.flush()
    return Plan(
      graph: g, options: options, steps: steps, types: types, constants: constants.filter { !valueIds.contains($0.key) },
      inputIds: inputIds, outputIds: outputIds, inputValues: inputValues, layers: layers)
  }
}
