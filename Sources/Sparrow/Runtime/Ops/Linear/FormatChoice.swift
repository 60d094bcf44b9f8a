import Dispatch

/// What a weight matrix's zeros look like.
struct SparsityProfile: Sendable {
  var zeroFraction: Double
  var emptyRows: Int
  var emptyCols: Int

  init(_ w: [Float], rows: Int, cols: Int) {
    var zeros = 0
    var rowNZ = [Bool](repeating: false, count: rows)
    var colNZ = [Bool](repeating: false, count: cols)
    for r in 0..<rows {
      for c in 0..<cols where w[r * cols + c] != 0 {
        rowNZ[r] = true
        colNZ[c] = true
      }
    }
    for v in w where v == 0 { zeros += 1 }
    zeroFraction = w.isEmpty ? 0 : Double(zeros) / Double(w.count)
    emptyRows = rowNZ.filter { !$0 }.count
    emptyCols = colNZ.filter { !$0 }.count
  }
}

/// A weight packed in the format chosen for it, with what `inspect` reports.
struct ChosenWeight: @unchecked Sendable {
  let matrix: PackedMatrix
  let measured: [String: Double]
  var cached = false
}

enum FormatChooser {
  /// Formats worth trying for this profile, dense first.
  static func candidates(_ p: SparsityProfile, kPerChannel: Int) -> [WeightFormat] {
    var out: [WeightFormat] = [.dense]
    if p.zeroFraction >= 0.4 {
      out += [.csr, .nm(n: 2, m: 4), .bsr(rows: 4, cols: 1), .bsr(rows: 8, cols: 1)]
      if kPerChannel > 1 { out.append(.nm(n: 2, m: 4, groupStride: kPerChannel)) }
    }
    if p.emptyRows > 0 || p.emptyCols > 0 { out.append(.channel) }
    return out
  }

  /// The format for one weight: forced by the policy, or the fastest candidate measured on this
  /// machine for `n` columns (remembered in `options.formatCache`). Candidates the weight cannot
  /// take (a non-conforming N:M) drop out.
  static func choose(
    _ w: [Float], rows: Int, cols: Int, n: Int, kPerChannel: Int, options: PlanOptions
  ) throws(ModelError) -> ChosenWeight {
    let (policy, threads) = (options.format, options.threads)
    let profile = SparsityProfile(w, rows: rows, cols: cols)
    var formats = candidates(profile, kPerChannel: kPerChannel)
    if case .fixed(let kind) = policy {
      switch kind {
      case .dense: formats = [.dense]
      case .csr: formats = [.csr]
      case .channel: formats = [.channel]
      case .bsr: formats = [.bsr(rows: 4, cols: 1)]
      case .nm:
        formats = [.nm(n: 2, m: 4)] + (kPerChannel > 1 ? [.nm(n: 2, m: 4, groupStride: kPerChannel)] : [])
      }
      formats.append(.dense)  // fallback when the weight cannot take the forced format
    }
    var key: String? = nil
    if case .auto = policy, formats.count > 1, let cache = options.formatCache {
      let k = FormatCache.key(
        weights: w, rows: rows, cols: cols, n: n, kPerChannel: kPerChannel, candidates: formats, threads: threads)
      if let hit = cache.lookup(k), let f = formats.first(where: { $0.description == hit.format }),
        let m = try? PackedMatrix(dense: w, rows: rows, cols: cols, format: f)
      {
        return ChosenWeight(matrix: m, measured: hit.measured, cached: true)
      }
      key = k
    }
    var packed: [PackedMatrix] = []
    for f in formats {
      if let m = try? PackedMatrix(dense: w, rows: rows, cols: cols, format: f) { packed.append(m) }
    }
    guard !packed.isEmpty else { throw ModelError("no format could pack a \(rows)x\(cols) weight") }
    if case .fixed = policy { return ChosenWeight(matrix: packed[0], measured: [:]) }
    if packed.count == 1 { return ChosenWeight(matrix: packed[0], measured: [:]) }
    // Time each candidate on the layer's real shape with random activations.
    var rng = SystemRandomNumberGenerator()
    let x = (0..<(cols * n)).map { _ in Float.random(in: -1...1, using: &rng) }
    var y = [Float](repeating: 0, count: rows * n)
    var measured: [String: Double] = [:]
    var best = (0, Double.infinity)
    for (i, m) in packed.enumerated() {
      let runner = SpMMRunner(threads: threads)
      var times: [Double] = []
      let flops = 2.0 * Double(rows * cols * n)
      let repeats = max(3, min(15, Int(2e8 / max(flops, 1))))
      for _ in 0..<repeats {
        let t0 = DispatchTime.now().uptimeNanoseconds
        let ok: Bool = x.withUnsafeBufferPointer { xb in
          y.withUnsafeMutableBufferPointer { yb in
            (try? runner.run(m, x: xb.baseAddress!, n: n, y: yb.baseAddress!)) != nil
          }
        }
        guard ok else { break }
        times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
      }
      guard times.count == repeats else { continue }
      let median = times.sorted()[times.count / 2]
      measured[m.format.description] = median
      if median < best.1 { best = (i, median) }
    }
    if let key, !measured.isEmpty {
      options.formatCache?.store(key, FormatCache.Entry(format: packed[best.0].format.description, measured: measured))
    }
    return ChosenWeight(matrix: packed[best.0], measured: measured)
  }
}
