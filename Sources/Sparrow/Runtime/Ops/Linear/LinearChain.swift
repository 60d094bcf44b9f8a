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
    for a in steps.indices {
      guard let (b, first, second) = pair(at: a, in: out, reads: reads, reader: reader, graphOutputs: graphOutputs),
        first.transposes, second.panel == nil
      else { continue }
      var kept = first, next = second
      kept.outputTransposed = true
      next.aTransposed = true
      out[a] = out[a].replacingStep(kept)
      out[b] = out[b].replacingStep(next)
    }
    return out
  }

  /// The linear layer at `a` and the one linear layer at `b` reading its output as A, where the
  /// pair can pass that output K-major: it is read by nothing else and is not a graph output,
  /// neither step is gated, the first has no addend (Gemm's full C, not per feature) and the
  /// second does not yet read K-major, and the sizes meet.
  static func pair(
    at a: Int, in steps: [PlannedStep], reads: [Int: Int], reader: [Int: Int], graphOutputs: Set<Int>
  ) -> (b: Int, first: LinearStep, second: LinearStep)? {
    let s = steps[a]
    guard s.gated == nil, s.outputIds.count == 1, let first = s.step as? LinearStep, first.addend == nil,
      !first.outputTransposed
    else { return nil }
    let y = s.outputIds[0]
    guard y >= 0, !graphOutputs.contains(y), reads[y] == 1, let b = reader[y], b > a, steps[b].gated == nil,
      steps[b].inputIds.first == y, steps[b].inputIds.dropFirst().allSatisfy({ $0 != y }),
      let second = steps[b].step as? LinearStep, !second.aTransposed, second.rows == first.rows,
      second.k == first.out
    else { return nil }
    return (b, first, second)
  }

  /// Pairs that `fuse` could chain, with one of them on the pixel-major panel: each layer's
  /// choice was timed alone, its format's step paying both transposes, which a chained pair
  /// does not (the first keeps its output K-major, the second reads it so). Where the pair on
  /// its sparse kernels, less the transposes the chain removes, is estimated faster than as
  /// chosen, both go to the kernels (and `fuse` chains them). Measured on MiniLM-L6 2:4 at
  /// 8 x 128 tokens (Zen 5, 1 thread): the feed-forward kernels 4.05 + 4.27 ms, their steps 5.75
  /// + 5.60, the panel 5.35 + 5.94: every pair went to the panel one layer at a time, and the
  /// model ran at 110 ms against 97 on the kernels.
  static func rechoosePairs(_ steps: [PlannedStep], graphOutputs: Set<Int>, layers: inout [LayerReport])
    -> [PlannedStep]
  {
    guard enabled else { return steps }
    let (reads, reader) = steps.readers()
    var out = steps
    for a in steps.indices {
      guard let (b, first, second) = pair(at: a, in: out, reads: reads, reader: reader, graphOutputs: graphOutputs),
        !first.aTransposed, first.rows > 1, first.packed.format != .dense, second.packed.format != .dense,
        let t1 = first.timings, let t2 = second.timings, first.panel != nil || second.panel != nil,
        chainPays(
          first: t1, firstShape: (first.k, first.out), firstOnPanel: first.panel != nil, second: t2,
          secondShape: (second.k, second.out), secondOnPanel: second.panel != nil)
      else { continue }
      for (i, l) in [(a, first.onKernels), (b, second.onKernels)] {
        out[i] = out[i].replacingStep(l)
        if let r = layers.firstIndex(where: { $0.node == out[i].node.name }) {
          layers[r].format = l.packed.format.description
          layers[r].kernel = l.packed.kernelName
        }
      }
    }
    return out
  }

  /// Whether a pair is estimated faster chained on its kernels than as chosen. A step's
  /// transposes (its time less its kernel's) are shared out by size: A's `rows x k`, Y's
  /// `rows x out`; the chain keeps the first layer's A transpose and the second's Y transpose.
  /// It must win by 3%, so timing noise does not flip near-ties.
  static func chainPays(
    first: LinearTimings, firstShape: (k: Int, out: Int), firstOnPanel: Bool, second: LinearTimings,
    secondShape: (k: Int, out: Int), secondOnPanel: Bool
  ) -> Bool {
    let now = (firstOnPanel ? first.panel : first.step) + (secondOnPanel ? second.panel : second.step)
    let t1 = max(first.step - first.kernel, 0), t2 = max(second.step - second.kernel, 0)
    let k1 = Double(firstShape.k), o1 = Double(firstShape.out), k2 = Double(secondShape.k), o2 = Double(secondShape.out)
    let chained = first.kernel + t1 * k1 / (k1 + o1) + second.kernel + t2 * o2 / (k2 + o2)
    return chained < 0.97 * now
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
    Transpose.blocked(c.input(0, Float.self), rows: rows, cols: cols, into: c.output(0, Float.self), threads: c.threads)
  }
}
