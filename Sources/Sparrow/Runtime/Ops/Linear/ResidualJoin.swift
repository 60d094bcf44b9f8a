import Foundation

/// A residual block's join fused into the convolution before it: `Add(conv(x), r)` and the
/// Relu fused into that Add (`BinaryStep.relu`) become part of the convolution's step, whose
/// rows tasks add `r` to the outputs they have just written, while those are in cache, instead
/// of a separate pass over both tensors after the whole layer (ONNX Runtime's NCHWc
/// convolution takes the residual the same way). The sum and the ReLU are computed as the Add
/// step computes them, so the result is bit for bit the unfused one.
///
/// Fused where the convolution runs a dense direct form (pixel-major or channel-major, with no
/// clamp of its own and no learned gate; a run with the runtime gate on adds the residual
/// after the gated convolution, `GatedStep`), its output is read by that Add alone and is
/// not a graph output, the Add is float32 over same-shape operands, and the other operand
/// exists when the convolution runs (written by an earlier step, or a graph input): in a
/// ResNet block whose shortcut is a convolution, the later of the two convolutions takes it.
///
/// Measured (Intel Xeon AVX-512, ResNet-18 dense, 1 thread): see Bench/results.
enum ResidualJoin {
  /// `SPARROW_RESIDUAL=unfused` keeps the Adds as steps of their own (for A/B timing).
  static let enabled = ProcessInfo.processInfo.environment["SPARROW_RESIDUAL"] != "unfused"

  static func fuse(_ steps: [PlannedStep], graphOutputs: Set<Int>) -> [PlannedStep] {
    guard enabled else { return steps }
    let (reads, reader) = steps.readers()
    var producer: [Int: Int] = [:]
    for (i, s) in steps.enumerated() { for id in s.outputIds where id >= 0 { producer[id] = i } }
    var out = steps
    var removed = Set<Int>()
    for (i, s) in steps.enumerated() {
      // Plain, or inside the gate's wrapper (which runs it as is while the gate is off).
      let wrapper = s.step as? GatedStep
      guard wrapper.map({ $0.outputGate == nil && $0.inputGate == nil }) ?? (s.gated == nil),
        s.outputIds.count == 1, var conv = (wrapper?.inner ?? s.step) as? DirectConvStep, conv.conv.isDense,
        conv.residualInput == nil, conv.lo == -.infinity, conv.hi == .infinity, let yType = s.outputTypes.first,
        yType.dtype == .float32
      else { continue }
      let y = s.outputIds[0]
      guard y >= 0, !graphOutputs.contains(y), reads[y] == 1, let j = reader[y], j > i, !removed.contains(j) else {
        continue
      }
      let join = steps[j]
      guard join.gated == nil, let add = join.step as? BinaryStep, add.kernel == .add, add.a == .float32,
        add.b == .float32,
        add.walk.isSameShape, join.inputIds.count == 2, join.outputIds.count == 1, join.outputIds[0] >= 0,
        let zType = join.outputTypes.first, zType == yType, join.inputTypes.allSatisfy({ $0 == yType })
      else { continue }
      let r = join.inputIds[0] == y ? join.inputIds[1] : join.inputIds[0]
      // The other operand: a different value, there before the convolution runs.
      guard r >= 0, r != y, producer[r].map({ $0 < i }) ?? true else { continue }
      conv.residualInput = s.inputIds.count
      conv.residualRelu = add.relu
      var step: any Step = conv
      if let wrapper {
        var g = GatedStep(conv)
        g.byInput = wrapper.byInput
        step = g
      }
      out[i] = PlannedStep(
        step: step, node: s.node, inputIds: s.inputIds + [r], outputIds: join.outputIds,
        inputTypes: s.inputTypes + [yType], outputTypes: join.outputTypes)
      removed.insert(j)
    }
    return out.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
  }
}
