/// Wanda (Sun et al., ICLR 2024, "A Simple and Effective Pruning Approach for Large Language
/// Models"): a weight's score is |w| times the L2 norm of the input feature it multiplies, taken
/// over calibration inputs run through Sparrow's own executor; each output row (the paper's
/// comparison group) keeps its highest scores, or with an N:M pattern every group of M input
/// channels at one kernel position keeps its N highest.
///
/// Where Sparrow differs from the paper's code: a convolution's input feature is taken per input
/// channel (the norm over batch and every spatial position), not per unfolded (channel, kernel
/// position) column; the two differ only by the padded border.
enum Wanda {
  /// Per layer, the norm of each input channel the layer reads (`cols / kPerChannel` values for
  /// a convolution's group slice times its groups, `cols` for Gemm/MatMul).
  static func inputNorms(
    _ g: Graph, _ layers: [WeightLayer], calibration: [[String: Tensor]]
  ) throws(PruneError) -> [[Float]] {
    guard !calibration.isEmpty else {
      throw PruneError("--method wanda needs calibration inputs: --calibration NAME=FILE.npy")
    }
    let names = layers.map { g.nodes[$0.node].inputs[0] }
    var sums: [String: [Double]] = [:]
    var failure: PruneError?
    do {
      try CalibrationRuns.collect(
        g, values: Array(Set(names)).sorted(), inputs: calibration,
        missing: PruneError.notComputed
      ) { name, t in
        guard t.dtype == .float32 else {
          throw PruneError("calibration: '\(name)' is \(t.dtype), not float32")
        }
        // The channel axis: 1 for a convolution's NCHW input, the last axis for Gemm/MatMul
        // (axis 0 for Gemm with transA = 1). Every layer reading `name` agrees (checked below).
        guard let l = layers.first(where: { g.nodes[$0.node].inputs[0] == name }) else { return }
        let axis = try channelAxis(g, l, rank: t.rank)
        let channels = t.shape[axis]
        let inner = t.shape[(axis + 1)...].reduce(1, *)
        let f = t.floats
        var s = sums[name] ?? [Double](repeating: 0, count: channels)
        guard s.count == channels else {
          throw PruneError("calibration: '\(name)' has \(channels) channels in one run and \(s.count) in another")
        }
        let outer = t.shape[..<axis].reduce(1, *)
        f.withUnsafeBufferPointer { p in
          for o in 0..<outer {
            for c in 0..<channels {
              let start = (o * channels + c) * inner
              var acc: Double = 0
              for i in start..<(start + inner) { acc += Double(p[i]) * Double(p[i]) }
              s[c] += acc
            }
          }
        }
        sums[name] = s
      }
    } catch let e as PruneError {
      failure = e
    } catch {
      failure = PruneError("calibration: \(error)")
    }
    if let failure { throw failure }
    var out: [[Float]] = []
    for (l, name) in zip(layers, names) {
      let norms = (sums[name] ?? []).map { Float($0.squareRoot()) }
      let group = l.op == "Conv" ? WeightLayers.intAttribute(g.nodes[l.node], "group", 1) : 1
      let need = l.cols / l.kPerChannel * group
      guard norms.count == need else {
        throw PruneError(
          "calibration: \(l.name) reads \(norms.count) input channels of '\(name)' but its weight expects \(need)")
      }
      out.append(norms)
    }
    return out
  }

  /// The axis of `l`'s input that indexes its input channels.
  static func channelAxis(_ g: Graph, _ l: WeightLayer, rank: Int) throws(PruneError) -> Int {
    switch l.op {
    case "Conv":
      guard rank >= 3 else { throw PruneError("calibration: \(l.name)'s input has rank \(rank), not a convolution's") }
      return 1
    case "Gemm":
      guard rank == 2 else { throw PruneError("calibration: \(l.name)'s input has rank \(rank), not 2") }
      return WeightLayers.intAttribute(g.nodes[l.node], "transA", 0) != 0 ? 0 : 1
    default:
      guard rank >= 1 else { throw PruneError("calibration: \(l.name)'s input is a scalar") }
      return rank - 1
    }
  }

  /// Scores |w|·‖x_channel‖ of `l`'s row-major `rows x cols` matrix `w`.
  static func scores(_ w: [Float], _ l: WeightLayer, norms: [Float], group: Int) -> [Float] {
    let cinPerGroup = l.cols / l.kPerChannel, rowsPerGroup = max(1, l.rows / group)
    var out = [Float](repeating: 0, count: w.count)
    for r in 0..<l.rows {
      let base = (r / rowsPerGroup) * cinPerGroup
      for c in 0..<l.cols { out[r * l.cols + c] = abs(w[r * l.cols + c]) * norms[base + c / l.kPerChannel] }
    }
    return out
  }

  /// Unstructured: in every row the `round(s · cols)` lowest scores go (already-zero weights
  /// score 0, so they are among them). Ties: the lower column first.
  static func pruneRows(_ w: inout [Float], scores: [Float], rows: Int, cols: Int, sparsity s: Double) {
    let k = WeightMethods.count(s, of: cols)
    for r in 0..<rows {
      let row = Array(scores[(r * cols)..<((r + 1) * cols)])
      for c in WeightMethods.smallestSet(row, count: k) { w[r * cols + c] = 0 }
    }
  }
}

extension PruneError {
  /// A calibration run did not produce a pruned layer's input.
  static func notComputed(_ name: String) -> any Error {
    PruneError("calibration: the input '\(name)' of a pruned layer was not computed")
  }
}
