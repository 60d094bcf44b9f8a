/// `channel-taylor`: a forward-only, Taylor-style channel saliency from calibration inputs.
///
/// The first-order Taylor score of a channel (Molchanov et al., 2017/2019) is |Σ a·∂L/∂a| over
/// the data; it needs the loss's gradients, which a post-training runtime without a training
/// loop does not have. What Sparrow measures instead is the first-order change of what the
/// channel's *readers* compute when it is removed: a reader (Conv, Gemm, MatMul) computes
/// Σ_c W[:, c]·x_c, so removing channel c changes its output by W[:, c]·x_c, whose norm over the
/// calibration inputs is ‖W[:, c]‖₂ · ‖x_c‖₂ for a linear or 1x1 reader (for a k×k convolution
/// the product of the filter slice's and the channel's norms, up to the border). A channel's
/// score is that sum over every layer reading it (a Concat's readers at their offset), with
/// `x_c` the tensor the reader sees, taken by Sparrow's own executor. This is the structured
/// form of Wanda's |W|·‖X‖ (the "Wanda-sp" baseline of the structured-pruning literature): the
/// gradient is replaced by the reader's weights, so it ranks by effect on the next layer, not
/// on the loss.
enum TaylorScores {
  /// Per reader node: the L2 norm of each input channel over the calibration runs.
  static func readerNorms(_ g: Graph, _ a: ChannelAnalysis, calibration: [[String: Tensor]]) throws(PruneError) -> [Int:
    [Float]]
  {
    var readers: Set<Int> = []
    for group in a.groups {
      for role in group.roles { if case .consumer(let n, _, _) = role { readers.insert(n) } }
    }
    let layers = WeightLayers.find(g, skipFirstLast: false).layers.filter { readers.contains($0.node) }
    guard !layers.isEmpty else { return [:] }
    let norms = try Wanda.inputNorms(g, layers, calibration: calibration)
    return Dictionary(zip(layers.map(\.node), norms), uniquingKeysWith: { first, _ in first })
  }

  /// The saliency of each channel of `group` (nil when no layer with measured inputs reads it).
  static func scores(_ g: Graph, _ group: ChannelGroup, norms: [Int: [Float]]) -> [Float]? {
    var out = [Float](repeating: 0, count: group.channels), found = false
    let layers = WeightLayers.find(g, skipFirstLast: false).layers
    for (role, unit) in zip(group.roles, group.units) {
      guard case .consumer(let n, _, let offset) = role, let x = norms[n],
        let l = layers.first(where: { $0.node == n }),
        let w = g.constants[l.weight]
      else { continue }
      let m = l.matrix(w), k = l.kPerChannel
      for c in 0..<group.channels {
        for e in (c * unit)..<((c + 1) * unit) {
          let j = e + offset
          guard j < x.count, (j + 1) * k <= l.cols else { continue }
          var s: Double = 0
          for r in 0..<l.rows {
            for q in (j * k)..<((j + 1) * k) { s += Double(m[r * l.cols + q]) * Double(m[r * l.cols + q]) }
          }
          out[c] += Float(s.squareRoot()) * x[j]
        }
      }
      found = true
    }
    return found ? out : nil
  }
}
