import Foundation

/// SparseGPT (Frantar & Alistarh, ICML 2023): layer-wise optimal-brain-surgeon pruning. Per layer
/// and group, H = X·Xᵀ over the calibration inputs the layer reads (a convolution's unfolded
/// windows), damped by 1% of its mean diagonal; columns are visited in blocks of 128, the mask
/// chosen per block by w² / [H⁻¹]ⱼⱼ² (adaptive, over all rows) or per N:M group, and each pruned
/// weight's error is spread over the not-yet-visited columns through the Cholesky factor of H⁻¹,
/// so kept weights change to reconstruct the layer's output.
///
/// Where Sparrow differs from the paper: the statistics of every layer come from one run of the
/// unpruned model (the paper feeds each block the already-pruned blocks' outputs); N:M groups run
/// along input channels at each kernel position, the grouping Sparrow's N:M kernels pack (columns
/// are permuted to that order, which OBS allows, and back).
enum SparseGPT {
  static let blockSize = 128
  static let dampening = 0.01

  /// One layer's Hessians, one per group (a `K x K` row-major matrix each, K = `cols`).
  struct Statistics {
    var h: [[Float]]
    var samples = 0
  }

  /// The Hessian statistics of every layer from the calibration runs.
  static func statistics(
    _ g: Graph, _ layers: [WeightLayer], calibration: [[String: Tensor]]
  ) throws(PruneError) -> [Statistics] {
    guard !calibration.isEmpty else {
      throw PruneError("--method sparsegpt needs calibration inputs: --calibration NAME=FILE.npy")
    }
    var stats = layers.map { l in
      Statistics(h: Array(repeating: [Float](repeating: 0, count: l.cols * l.cols), count: groups(g, l)))
    }
    var readers: [String: [Int]] = [:]
    for (i, l) in layers.enumerated() { readers[g.nodes[l.node].inputs[0], default: []].append(i) }
    var failure: PruneError?
    do {
      try CalibrationRuns.collect(
        g, values: readers.keys.sorted(), inputs: calibration,
        missing: PruneError.notComputed
      ) { name, t in
        guard t.dtype == .float32 else { throw PruneError("calibration: '\(name)' is \(t.dtype), not float32") }
        for i in readers[name] ?? [] { try accumulate(&stats[i], g, layers[i], t) }
      }
    } catch let e as PruneError {
      failure = e
    } catch {
      failure = PruneError("calibration: \(error)")
    }
    if let failure { throw failure }
    return stats
  }

  static func groups(_ g: Graph, _ l: WeightLayer) -> Int {
    l.op == "Conv" ? max(1, WeightLayers.intAttribute(g.nodes[l.node], "group", 1)) : 1
  }

  /// Adds `x`'s columns (the vectors the layer multiplies its weight rows by) to H.
  static func accumulate(_ s: inout Statistics, _ g: Graph, _ l: WeightLayer, _ x: Tensor) throws(PruneError) {
    let f = x.floats
    let k = l.cols
    func flush(_ group: Int, _ batch: inout [Float], _ count: inout Int) {
      guard count > 0 else { return }
      // H += Bᵀ·B for the count x k batch B (upper triangle, mirrored at the end of the layer).
      batch.withUnsafeBufferPointer { b in
        s.h[group].withUnsafeMutableBufferPointer { h in
          for r in 0..<count {
            let row = b.baseAddress! + r * k
            for i in 0..<k {
              let v = row[i]
              if v == 0 { continue }
              let hi = h.baseAddress! + i * k
              for j in i..<k { hi[j] += v * row[j] }
            }
          }
        }
      }
      s.samples += count
      count = 0
    }
    switch l.op {
    case "Conv":
      guard x.rank == 4 else {
        throw PruneError("\(l.name): sparsegpt supports 2-D convolutions (input rank 4), not rank \(x.rank)")
      }
      let geo = try Window(g.nodes[l.node], input: x.shape, weight: l.shape)
      let groupCount = groups(g, l), cin = l.cols / l.kPerChannel
      guard cin * groupCount == x.shape[1] else {
        throw PruneError("calibration: \(l.name) reads \(x.shape[1]) channels, its weight expects \(cin * groupCount)")
      }
      let chunk = 256
      var batch = [Float](repeating: 0, count: chunk * k)
      for gi in 0..<groupCount {
        var count = 0
        for n in 0..<x.shape[0] {
          for oh in 0..<geo.ho {
            for ow in 0..<geo.wo {
              let base = count * k
              for c in 0..<cin {
                let plane = ((n * x.shape[1]) + gi * cin + c) * geo.h * geo.w
                for i in 0..<geo.kh {
                  let ih = oh * geo.sh - geo.padTop + i * geo.dh
                  for j in 0..<geo.kw {
                    let iw = ow * geo.sw - geo.padLeft + j * geo.dw
                    let inside = ih >= 0 && ih < geo.h && iw >= 0 && iw < geo.w
                    batch[base + (c * geo.kh + i) * geo.kw + j] = inside ? f[plane + ih * geo.w + iw] : 0
                  }
                }
              }
              count += 1
              if count == chunk { flush(gi, &batch, &count) }
            }
          }
        }
        flush(gi, &batch, &count)
      }
    default:
      let transA = l.op == "Gemm" && WeightLayers.intAttribute(g.nodes[l.node], "transA", 0) != 0
      let channels = transA ? x.shape[0] : (x.shape.last ?? 0)
      guard channels == k else {
        throw PruneError("calibration: \(l.name) reads \(channels) input features, its weight expects \(k)")
      }
      var count = x.count / max(k, 1)
      if transA {
        var batch = [Float](repeating: 0, count: f.count)
        for c in 0..<k { for m in 0..<count { batch[m * k + c] = f[c * count + m] } }
        flush(0, &batch, &count)
      } else {
        var batch = f
        flush(0, &batch, &count)
      }
    }
  }

  /// A 2-D convolution's window, pads resolved (auto_pad included).
  struct Window {
    var h = 1, w = 1, kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1, padTop = 0, padLeft = 0, ho = 1, wo = 1

    init(_ n: Node, input: [Int], weight: [Int]) throws(PruneError) {
      func ints(_ key: String, _ fallback: [Int]) -> [Int] {
        if case .ints(let v)? = n.attributes[key] { return v.map { Int(clamping: $0) } }
        return fallback
      }
      (h, w) = (input[2], input[3])
      guard weight.count == 4 else { throw PruneError("\(n.name): sparsegpt supports 2-D convolutions only") }
      (kh, kw) = (weight[2], weight[3])
      let s = ints("strides", [1, 1]), d = ints("dilations", [1, 1])
      guard s.count == 2, d.count == 2, (s + d).allSatisfy({ $0 > 0 }) else {
        throw PruneError("\(n.name): strides and dilations must hold 2 positive values")
      }
      (sh, sw, dh, dw) = (s[0], s[1], d[0], d[1])
      let extH = (kh - 1) * dh + 1, extW = (kw - 1) * dw + 1
      var padBottom = 0, padRight = 0
      var autoPad = "NOTSET"
      if case .string(let a)? = n.attributes["auto_pad"] { autoPad = a }
      switch autoPad {
      case "SAME_UPPER", "SAME_LOWER":
        func same(_ size: Int, _ stride: Int, _ ext: Int) -> (Int, Int) {
          let total = max(0, ((size + stride - 1) / stride - 1) * stride + ext - size)
          return autoPad == "SAME_UPPER" ? (total / 2, total - total / 2) : (total - total / 2, total / 2)
        }
        (padTop, padBottom) = same(h, sh, extH)
        (padLeft, padRight) = same(w, sw, extW)
      case "VALID": break
      default:
        let p = ints("pads", [0, 0, 0, 0])
        guard p.count == 4, p.allSatisfy({ $0 >= 0 }) else { throw PruneError("\(n.name): pads must hold 4 values") }
        (padTop, padLeft, padBottom, padRight) = (p[0], p[1], p[2], p[3])
      }
      ho = (h + padTop + padBottom - extH) / sh + 1
      wo = (w + padLeft + padRight - extW) / sw + 1
      guard h + padTop + padBottom >= extH, w + padLeft + padRight >= extW else {
        throw PruneError("\(n.name): the window does not fit the calibration input")
      }
    }
  }

  /// Prunes the row-major `rows x cols` matrix `w` of `l` with its statistics: to `sparsity`
  /// (unstructured) or to `pattern`, its groups' kept positions shared by blocks of
  /// `shareRows` rows of a group (`--share-rows`). Kept weights are updated.
  static func prune(
    _ w: inout [Float], _ l: WeightLayer, _ s: Statistics, sparsity: Double, pattern: NMPattern?, shareRows: Int = 1
  ) {
    let k = l.cols, groupCount = s.h.count, rowsPerGroup = l.rows / groupCount
    // Column order: N:M groups run along input channels at each kernel position, so visit the
    // columns position-major (channel c at position p is column c·kpc + p).
    let kpc = l.kPerChannel, cin = k / kpc
    let order: [Int] = pattern == nil ? Array(0..<k) : (0..<kpc).flatMap { p in (0..<cin).map { $0 * kpc + p } }
    for gi in 0..<groupCount {
      // H in visiting order, in double precision.
      var h = [Double](repeating: 0, count: k * k)
      for a in 0..<k {
        for b in 0..<k {
          let (i, j) = (min(order[a], order[b]), max(order[a], order[b]))
          h[a * k + b] = Double(s.h[gi][i * k + j])
        }
      }
      var rows: [[Double]] = (0..<rowsPerGroup).map { r in order.map { Double(w[(gi * rowsPerGroup + r) * k + $0]) } }
      // Dead inputs (never nonzero): their weights cannot matter; prune them and pin H.
      for j in 0..<k where h[j * k + j] == 0 {
        h[j * k + j] = 1
        for r in rows.indices { rows[r][j] = 0 }
      }
      let mean = (0..<k).reduce(0.0) { $0 + h[$1 * k + $1] } / Double(max(k, 1))
      for j in 0..<k { h[j * k + j] += dampening * mean }
      let u = inverseCholeskyUpper(h, k)
      obs(&rows, u, k, sparsity: sparsity, pattern: pattern, shareRows: shareRows)
      for r in 0..<rowsPerGroup {
        for (a, col) in order.enumerated() { w[(gi * rowsPerGroup + r) * k + col] = Float(rows[r][a]) }
      }
    }
  }

  /// U upper triangular with Uᵀ·U = H⁻¹ (H symmetric positive definite, `k x k`).
  static func inverseCholeskyUpper(_ h: [Double], _ k: Int) -> [Double] {
    // H = L·Lᵀ; H⁻¹ = L⁻ᵀ·L⁻¹; then H⁻¹ = M·Mᵀ and U = Mᵀ.
    let l = cholesky(h, k)
    var linv = [Double](repeating: 0, count: k * k)  // lower triangular inverse of L
    for j in 0..<k {
      linv[j * k + j] = 1 / l[j * k + j]
      for i in (j + 1)..<max(j + 1, k) {
        var sum = 0.0
        for m in j..<i { sum -= l[i * k + m] * linv[m * k + j] }
        linv[i * k + j] = sum / l[i * k + i]
      }
    }
    var inv = [Double](repeating: 0, count: k * k)  // H⁻¹ = L⁻ᵀ·L⁻¹
    for i in 0..<k {
      for j in i..<k {
        var sum = 0.0
        for m in j..<k { sum += linv[m * k + i] * linv[m * k + j] }
        inv[i * k + j] = sum
        inv[j * k + i] = sum
      }
    }
    let m = cholesky(inv, k)
    var u = [Double](repeating: 0, count: k * k)
    for i in 0..<k { for j in 0...i { u[j * k + i] = m[i * k + j] } }
    return u
  }

  /// Lower Cholesky factor of a symmetric positive definite matrix; a pivot that is not positive
  /// (round-off on a nearly singular H) is clamped to a tiny positive value.
  static func cholesky(_ a: [Double], _ k: Int) -> [Double] {
    var l = [Double](repeating: 0, count: k * k)
    for j in 0..<k {
      var d = a[j * k + j]
      for m in 0..<j { d -= l[j * k + m] * l[j * k + m] }
      let pivot = max(d, 1e-12 * max(abs(a[j * k + j]), 1e-30)).squareRoot()
      l[j * k + j] = pivot
      for i in (j + 1)..<max(j + 1, k) {
        var sum = a[i * k + j]
        for m in 0..<j { sum -= l[i * k + m] * l[j * k + m] }
        l[i * k + j] = sum / pivot
      }
    }
    return l
  }

  /// The column sweep: masks chosen per block (or per N:M group), each pruned weight's error
  /// spread over the columns not yet visited. N:M with `shareRows` R > 1: blocks of R rows
  /// drop the same M − N positions of a group, those with the lowest score summed over the block
  /// (each row's score taken after the updates so far, as for one row).
  static func obs(
    _ rows: inout [[Double]], _ u: [Double], _ k: Int, sparsity: Double, pattern: NMPattern?, shareRows: Int = 1
  ) {
    // Blocks hold whole N:M groups, so a group never straddles two.
    let size = pattern.map { max(1, blockSize / $0.m) * $0.m } ?? blockSize
    var b0 = 0
    while b0 < k {
      let b1 = min(b0 + size, k)
      var pruned = [[Bool]](repeating: [Bool](repeating: false, count: b1 - b0), count: rows.count)
      if pattern == nil {
        var scores: [Float] = []
        scores.reserveCapacity(rows.count * (b1 - b0))
        for r in rows.indices {
          for j in b0..<b1 { scores.append(Float(rows[r][j] * rows[r][j] / (u[j * k + j] * u[j * k + j]))) }
        }
        for f in WeightMethods.smallestSet(scores, count: WeightMethods.count(sparsity, of: scores.count)) {
          pruned[f / (b1 - b0)][f % (b1 - b0)] = true
        }
      }
      var errors = [[Double]](repeating: [Double](repeating: 0, count: b1 - b0), count: rows.count)
      for j in b0..<b1 {
        if let p = pattern, j % p.m == 0 {
          // This N:M group: per row (per block of shareRows rows), the M - N lowest scores go.
          let end = min(j + p.m, b1), share = max(1, shareRows)
          for r0 in stride(from: 0, to: rows.count, by: share) {
            let block = r0..<min(rows.count, r0 + share)
            let keys = (j..<end).map { c in
              Float(block.reduce(0.0) { $0 + rows[$1][c] * rows[$1][c] } / (u[c * k + c] * u[c * k + c]))
            }
            for i in WeightMethods.smallest(keys, count: max(0, keys.count - p.n)) {
              for r in block { pruned[r][j - b0 + i] = true }
            }
          }
        }
        let d = u[j * k + j]
        for r in rows.indices {
          let q = pruned[r][j - b0] ? 0 : rows[r][j]
          let e = (rows[r][j] - q) / d
          rows[r][j] = q
          errors[r][j - b0] = e
          if e != 0 { for c in (j + 1)..<b1 { rows[r][c] -= e * u[j * k + c] } }
        }
      }
      // The block's errors reach every later column at once.
      if b1 < k {
        for r in rows.indices {
          for (i, e) in errors[r].enumerated() where e != 0 {
            let j = b0 + i
            for c in b1..<k { rows[r][c] -= e * u[j * k + c] }
          }
        }
      }
      b0 = b1
    }
  }
}
