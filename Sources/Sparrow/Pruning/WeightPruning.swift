/// `magnitude`, `random`, `nm`, `block`, `stripe`, `wanda` and `sparsegpt` over a model's eligible layers, per layer or ranked
/// globally. Zeros are written in place; shapes never change.
enum WeightPruning {
  /// Prunes `layers` of `g`; returns the layers left dense, with why.
  static func run(_ g: inout Graph, _ layers: [WeightLayer], _ o: PruneOptions) throws(PruneError) -> [Int: String] {
    var mats = layers.map { l in g.constants[l.weight].map { l.matrix($0) } ?? [] }
    var leftDense: [Int: String] = [:]
    var rng = PruneRNG(seed: o.seed)
    let s = o.target
    // Wanda's scores need the input norms, from the calibration runs on the unpruned model.
    let norms = o.method == .wanda ? try Wanda.inputNorms(g, layers, calibration: o.calibration) : []
    let hessians = o.method == .sparsegpt ? try SparseGPT.statistics(g, layers, calibration: o.calibration) : []
    switch (o.method, o.scope) {
    case (.sparsegpt, _):
      for (i, l) in layers.enumerated() {
        if o.usesPattern, let why = WeightMethods.nmRefusal(cols: l.cols, kPerChannel: l.kPerChannel, pattern: o.nmPattern) {
          leftDense[l.node] = "left dense: \(why)"
          continue
        }
        SparseGPT.prune(
          &mats[i], l, hessians[i], sparsity: s, pattern: o.usesPattern ? o.nmPattern : nil, shareRows: o.shareRows ?? 1)
      }
    case (.wanda, _):
      for (i, l) in layers.enumerated() {
        let group = l.op == "Conv" ? WeightLayers.intAttribute(g.nodes[l.node], "group", 1) : 1
        let scores = Wanda.scores(mats[i], l, norms: norms[i], group: group)
        if o.usesPattern {
          if let why = WeightMethods.nmRefusal(cols: l.cols, kPerChannel: l.kPerChannel, pattern: o.nmPattern) {
            leftDense[l.node] = "left dense: \(why)"
          } else {
            WeightMethods.nm(
              &mats[i], rows: l.rows, cols: l.cols, kPerChannel: l.kPerChannel, pattern: o.nmPattern, scores: scores,
              shareRows: o.shareRows ?? 1)
          }
        } else {
          Wanda.pruneRows(&mats[i], scores: scores, rows: l.rows, cols: l.cols, sparsity: s)
        }
      }
    case (.magnitude, .layer):
      for i in mats.indices { WeightMethods.magnitude(&mats[i], zeros: WeightMethods.count(s, of: mats[i].count)) }
    case (.random, .layer):
      for i in mats.indices { WeightMethods.random(&mats[i], zeros: WeightMethods.count(s, of: mats[i].count), rng: &rng) }
    case (.nm, _):
      let p = o.nmPattern
      for (i, l) in layers.enumerated() {
        if let why = WeightMethods.nmRefusal(cols: l.cols, kPerChannel: l.kPerChannel, pattern: p) {
          leftDense[l.node] = "left dense: \(why)"
        } else {
          WeightMethods.nm(
            &mats[i], rows: l.rows, cols: l.cols, kPerChannel: l.kPerChannel, pattern: p, shareRows: o.shareRows ?? 1)
        }
      }
    case (.block, .layer):
      for (i, l) in layers.enumerated() {
        let blocks = WeightMethods.blocks(rows: l.rows, cols: l.cols, o.blockShape)
        let scores = WeightMethods.blockScores(mats[i], cols: l.cols, blocks)
        for b in WeightMethods.smallestSet(scores, count: WeightMethods.count(s, of: blocks.count)) {
          WeightMethods.zero(&mats[i], cols: l.cols, block: blocks[b])
        }
      }
    case (.magnitude, .global):
      // All weights ranked by |w| together; ties go to the earlier layer, then the lower index.
      let flat = mats.flatMap { $0.map { abs($0) } }
      let offsets = mats.reduce(into: [0]) { $0.append($0[$0.count - 1] + $1.count) }
      for f in WeightMethods.smallestSet(flat, count: WeightMethods.count(s, of: flat.count)) {
        let (i, j) = locate(f, offsets)
        mats[i][j] = 0
      }
    case (.random, .global):
      let offsets = mats.reduce(into: [0]) { $0.append($0[$0.count - 1] + $1.count) }
      let total = offsets[offsets.count - 1]
      var nonzero: [Int] = []
      for (i, m) in mats.enumerated() { for j in m.indices where m[j] != 0 { nonzero.append(offsets[i] + j) } }
      let need = WeightMethods.count(s, of: total) - (total - nonzero.count)
      for f in rng.pick(need, from: nonzero) {
        let (i, j) = locate(f, offsets)
        mats[i][j] = 0
      }
    case (.block, .global):
      var all: [(layer: Int, block: (r0: Int, r1: Int, c0: Int, c1: Int))] = []
      var scores: [Float] = []
      for (i, l) in layers.enumerated() {
        let blocks = WeightMethods.blocks(rows: l.rows, cols: l.cols, o.blockShape)
        scores += WeightMethods.blockScores(mats[i], cols: l.cols, blocks)
        all += blocks.map { (i, $0) }
      }
      for b in WeightMethods.smallestSet(scores, count: WeightMethods.count(s, of: all.count)) {
        WeightMethods.zero(&mats[all[b].layer], cols: layers[all[b].layer].cols, block: all[b].block)
      }
    case (.stripe, .layer):
      for (i, l) in layers.enumerated() {
        guard l.op == "Conv" else {
          leftDense[l.node] = "left dense: stripes are kernel positions of a convolution's filters"
          continue
        }
        let scores = WeightMethods.stripeScores(mats[i], rows: l.rows, cols: l.cols, kPerChannel: l.kPerChannel)
        for st in WeightMethods.smallestSet(scores, count: WeightMethods.count(s, of: scores.count)) {
          WeightMethods.zeroStripe(&mats[i], cols: l.cols, kPerChannel: l.kPerChannel, st)
        }
      }
    case (.stripe, .global):
      // Stripes of every convolution ranked by mean |w| together (a mean, so stripes of layers
      // with more input channels do not weigh more).
      var all: [(layer: Int, stripe: Int)] = []
      var scores: [Float] = []
      for (i, l) in layers.enumerated() {
        guard l.op == "Conv" else {
          leftDense[l.node] = "left dense: stripes are kernel positions of a convolution's filters"
          continue
        }
        let sc = WeightMethods.stripeScores(mats[i], rows: l.rows, cols: l.cols, kPerChannel: l.kPerChannel)
        scores += sc
        all += sc.indices.map { (i, $0) }
      }
      for b in WeightMethods.smallestSet(scores, count: WeightMethods.count(s, of: all.count)) {
        let l = layers[all[b].layer]
        WeightMethods.zeroStripe(&mats[all[b].layer], cols: l.cols, kPerChannel: l.kPerChannel, all[b].stripe)
      }
    case (.channelL1, _), (.channelFPGM, _), (.channelTaylor, _):
      throw PruneError("\(o.method.rawValue) is a channel method")
    }
    for (i, l) in layers.enumerated() where leftDense[l.node] == nil {
      g.constants[l.weight] = try l.tensor(mats[i])
    }
    return leftDense
  }

  /// (layer, index) of flat index `f` given each layer's start offset.
  static func locate(_ f: Int, _ offsets: [Int]) -> (Int, Int) {
    var lo = 0, hi = offsets.count - 2
    while lo < hi {
      let mid = (lo + hi + 1) / 2
      if offsets[mid] <= f { lo = mid } else { hi = mid - 1 }
    }
    return (lo, f - offsets[lo])
  }
}
