import Foundation

/// Two linear layers in a row on the sparse kernels (a transformer's feed-forward block:
/// intermediate, GELU, output) pass their activation K-major. The sparse kernels compute
/// `out x rows` and `LinearStep` transposes it back to the `rows x out` ONNX holds, only for the
/// next layer to transpose it again into the `K x rows` its kernel reads. Where the first
/// layer's output is read by nothing but the second (not a graph output, one reader), the first
/// keeps the kernels' layout (`outputTransposed`) and the second reads it as Gemm's transA
/// (`aTransposed`): two transposes fewer. Its bias, clamp and GELU are per output feature or
/// elementwise, so they are the same on either layout; an addend (Gemm's full C) is not, and
/// keeps the pair apart. The second layer may be on any path that reads K-major A (the sparse
/// kernels, or OpenBLAS with transA), not the pixel-major panel, which reads rows.
///
/// Measured (Intel Xeon AVX-512, MiniLM-L6 at 90%, seq 128, 1 thread): the intermediate's
/// transpose back (1536 x 128) and the output layer's transpose in cost about 90 us a layer.
enum LinearChain {
  /// `SPARROW_LINEAR_CHAIN=off` keeps every layer row-major (for A/B timing).
  static let enabled = ProcessInfo.processInfo.environment["SPARROW_LINEAR_CHAIN"] != "off"

  static func fuse(_ steps: [PlannedStep], graphOutputs: Set<Int>) -> [PlannedStep] {
    guard enabled else { return steps }
    let (reads, reader) = steps.readers()
    var out = steps
    for (a, s) in steps.enumerated() {
      guard s.gated == nil, s.outputIds.count == 1, let first = out[a].step as? LinearStep,
        first.transposes, first.addend == nil, !first.outputTransposed
      else { continue }
      let y = s.outputIds[0]
      guard y >= 0, !graphOutputs.contains(y), reads[y] == 1, let b = reader[y], b > a, out[b].gated == nil,
        out[b].inputIds.first == y, out[b].inputIds.dropFirst().allSatisfy({ $0 != y }),
        var second = out[b].step as? LinearStep, !second.aTransposed, second.panel == nil, second.rows == first.rows,
        second.k == first.out
      else { continue }
      var kept = first
      kept.outputTransposed = true
      second.aTransposed = true
      out[a] = out[a].replacingStep(kept)
      out[b] = out[b].replacingStep(second)
    }
    return out
  }

  /// Linear layers on the sparse kernels that read the same row-major value (an attention
  /// block's Q, K and V projections of one LayerNorm output) share one transpose of it: a
  /// `TransposeRowsStep` writes it K-major once, before the first of them, and each reads that
  /// with `aTransposed` instead of transposing it itself. Runs after `fuse` (layers already
  /// reading K-major are left alone). MiniLM: two 128 x 384 transposes fewer per layer.
  static func shareTransposedInputs(_ steps: [PlannedStep], types: inout [TensorType]) -> [PlannedStep] {
    guard enabled else { return steps }
    var readers: [Int: [Int]] = [:]
    for (i, s) in steps.enumerated() {
      guard s.gated == nil, let l = s.step as? LinearStep, l.transposes, !l.aTransposed, let a = s.inputIds.first,
        a >= 0, s.inputIds.dropFirst().allSatisfy({ $0 != a })
      else { continue }
      readers[a, default: []].append(i)
    }
    var out = steps
    var before: [Int: PlannedStep] = [:]
    for (a, group) in readers where group.count > 1 {
      let first = steps[group[0]].step as! LinearStep
      let same = group.filter { i in
        let l = steps[i].step as! LinearStep
        return l.rows == first.rows && l.k == first.k
      }
      guard same.count > 1 else { continue }
      let t = TensorType(.float32, [first.k, first.rows])
      types.append(t)
      let id = types.count - 1
      let node = steps[same[0]].node
      before[same[0]] = PlannedStep(
        step: TransposeRowsStep(rows: first.rows, cols: first.k),
        node: Node(name: node.name + " (input K-major)", opType: "Transpose", inputs: [], outputs: [], attributes: [:]),
        inputIds: [a], outputIds: [id], inputTypes: [steps[same[0]].inputTypes.first ?? nil], outputTypes: [t])
      for i in same {
        var l = steps[i].step as! LinearStep
        l.aTransposed = true
        let s = steps[i]
        out[i] = PlannedStep(
          step: l, node: s.node, inputIds: [id] + s.inputIds.dropFirst(), outputIds: s.outputIds,
          inputTypes: [t] + s.inputTypes.dropFirst(), outputTypes: s.outputTypes)
      }
    }
    guard !before.isEmpty else { return out }
    var result: [PlannedStep] = []
    for (i, s) in out.enumerated() {
      if let b = before[i] { result.append(b) }
      result.append(s)
    }
    return result
  }
}

/// A rows x cols float matrix written transposed (cols x rows): the shared K-major input of
/// `LinearChain.shareTransposedInputs`.
struct TransposeRowsStep: Step {
  let rows: Int, cols: Int
  func run(_ c: StepContext) throws(RuntimeError) {
    Transpose.blocked(c.input(0, Float.self), rows: rows, cols: cols, into: c.output(0, Float.self))
  }
}
