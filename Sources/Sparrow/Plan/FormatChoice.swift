/// What a weight matrix's zeros look like (the `M x K` view): what decides which formats can
/// pay off. `inspect` prints it per layer.
public struct SparsityProfile: Sendable, Codable, Equatable {
  public var zeroFraction: Double
  /// Rows (output channels) and columns with no nonzero: what the channel format removes.
  public var emptyRows: Int
  public var emptyCols: Int
  /// Fraction of groups of 4 consecutive columns holding at most 2 nonzeros (1.0: the weight is
  /// 2:4 in ONNX's flattened order); `nm24AlongCin` groups 4 input channels at each kernel
  /// position instead (nil for 1x1 kernels and fully connected layers).
  public var nm24: Double
  public var nm24AlongCin: Double?
  /// Nonzeros over the capacity of the blocks that hold any: how full BSR's blocks would be.
  public var blockFill4x1: Double
  public var blockFill4x4: Double

  init(_ w: [Float], rows: Int, cols: Int, kPerChannel: Int = 1) {
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
    nm24 = Self.nmConformance(w, rows: rows, cols: cols, stride: 1)
    nm24AlongCin = kPerChannel > 1 && cols % kPerChannel == 0
      ? Self.nmConformance(w, rows: rows, cols: cols, stride: kPerChannel) : nil
    let nnz = w.count - zeros
    blockFill4x1 = Self.blockFill(w, rows: rows, cols: cols, r: 4, c: 1, nnz: nnz)
    blockFill4x4 = Self.blockFill(w, rows: rows, cols: cols, r: 4, c: 4, nnz: nnz)
  }

  /// Groups of 4 columns `stride` apart (a partial last group counts as its own group).
  static func nmConformance(_ w: [Float], rows: Int, cols: Int, stride: Int) -> Double {
    var groups = 0, ok = 0
    for r in 0..<rows {
      let row = r * cols
      var base = 0
      while base < cols {
        // Groups start at base + i for i < stride (each run of 4*stride columns holds stride groups).
        for i in 0..<stride where base + i < cols {
          var nz = 0
          for j in 0..<4 {
            let c = base + i + j * stride
            if c < cols && w[row + c] != 0 { nz += 1 }
          }
          groups += 1
          if nz <= 2 { ok += 1 }
        }
        base += 4 * stride
      }
    }
    return groups == 0 ? 1 : Double(ok) / Double(groups)
  }

  static func blockFill(_ w: [Float], rows: Int, cols: Int, r: Int, c: Int, nnz: Int) -> Double {
    guard nnz > 0 else { return 0 }
    var blocks = 0
    for br in stride(from: 0, to: rows, by: r) {
      for bc in stride(from: 0, to: cols, by: c) {
        search: for i in br..<min(br + r, rows) {
          for j in bc..<min(bc + c, cols) where w[i * cols + j] != 0 {
            blocks += 1
            break search
          }
        }
      }
    }
    return Double(nnz) / Double(blocks * r * c)
  }
}

/// A weight packed in the format chosen for it, with what `inspect` reports.
struct ChosenWeight: @unchecked Sendable {
  let matrix: PackedMatrix
  let measured: [String: Double]
  var cached = false
}

enum FormatChooser {
  /// Formats worth trying for this profile, dense (OpenBLAS) first, then Sparrow's own dense
  /// kernels: every layer times both, so neither makes a layer slower.
  static func candidates(_ p: SparsityProfile, kPerChannel: Int) -> [WeightFormat] {
    var out: [WeightFormat] = [.dense, .packed]
    if p.zeroFraction >= 0.4 {
      out += [.csr, .nm(n: 2, m: 4), .bsr(rows: 4, cols: 1), .bsr(rows: 8, cols: 1)]
      if kPerChannel > 1 { out.append(.nm(n: 2, m: 4, groupStride: kPerChannel)) }
    }
    if p.emptyRows > 0 || p.emptyCols > 0 { out.append(.channel) }
    return out
  }

  /// The format for one weight: forced by the policy, or the fastest candidate measured on this
  /// machine for `n` columns (remembered in `options.formatCache`). Candidates the weight cannot
  /// take (a non-conforming N:M) drop out. With a `window` (a k×k convolution that runs image by
  /// image, `windowChannels` input channels per group), each candidate is timed as the
  /// convolution runs it: kernels that read windows straight from a random image, the others
  /// unfolding it first (im2col) and multiplying the unfolded matrix, so the copy a window saves
  /// counts in the choice.
  static func choose(
    _ w: [Float], rows: Int, cols: Int, n: Int, kPerChannel: Int, options: PlanOptions,
    window: Im2col? = nil, windowChannels: Int = 0
  ) throws(ModelError) -> ChosenWeight {
    let (policy, threads) = (options.format, options.threads)
    let profile = SparsityProfile(w, rows: rows, cols: cols)
    var formats = candidates(profile, kPerChannel: kPerChannel)
    if case .fixed(let kind) = policy {
      switch kind {
      case .dense: formats = [.dense]
      case .csr: formats = [.csr]
      case .channel: formats = [.channel]
      case .packed: formats = [.packed]
      case .bsr: formats = [.bsr(rows: 4, cols: 1)]
      case .nm:
        formats = [.nm(n: 2, m: 4)] + (kPerChannel > 1 ? [.nm(n: 2, m: 4, groupStride: kPerChannel)] : [])
      }
      formats.append(.dense)  // fallback when the weight cannot take the forced format
    }
    var key: String? = nil
    if case .auto = policy, formats.count > 1, let cache = options.formatCache {
      let k = FormatCache.key(
        weights: w, rows: rows, cols: cols, n: n, kPerChannel: kPerChannel, candidates: formats, threads: threads,
        window: window != nil)
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
    var x = (0..<(cols * n)).map { _ in Float.random(in: -1...1, using: &rng) }
    var y = [Float](repeating: 0, count: rows * n)
    let imageCount = window.map { windowChannels * $0.shape.h * $0.shape.w } ?? 0
    let image = (0..<imageCount).map { _ in Float.random(in: -1...1, using: &rng) }
    let wsBytes = packed.map { window != nil && $0.readsWindow ? SpMMRunner.workspaceBytes($0, n: n) : 0 }
    let workspaces = wsBytes.map { UnsafeMutableRawPointer.allocate(byteCount: max($0, 64), alignment: 64) }
    defer { for p in workspaces { p.deallocate() } }
    var measured: [String: Double] = [:]
    var best = (0, Double.infinity)
    let repeats = Measure.repeats(flops: 2.0 * Double(rows * cols * n), budget: 2e8, range: 3...15)
    let runners = packed.map { _ in SpMMRunner(threads: threads) }
    // Each run meets the caches as a layer inside a model does: the weights out of L2 (every
    // other layer ran since), the activations just written (read once to warm them). Candidates
    // alternate run by run (Measure.fastestInterleaved); one twice as slow as the best drops out.
    // On one thread the kernels run on this thread: its CPU time leaves out other processes.
    let times = Measure.fastestInterleaved(
      candidates: packed.count, repeats: repeats, threadCPUTime: threads == 1,
      before: {
        Measure.evictCaches()
        var s: Float = 0
        for i in stride(from: 0, to: x.count, by: 16) { s += x[i] }  // one float per 64-byte line
        for i in stride(from: 0, to: image.count, by: 16) { s += image[i] }
        y[0] = s
      }
    ) { i in
      if let window {
        return image.withUnsafeBufferPointer { ib in
          y.withUnsafeMutableBufferPointer { yb in
            if packed[i].readsWindow {
              return (try? window.withWindow(channels: windowChannels) { (win) throws(KernelError) in
                try SpMMRunner.run(
                  packed[i], x: ib.baseAddress!, xStride: n, n: n, y: yb.baseAddress!, yStride: n, bias: nil,
                  lo: -.infinity, hi: .infinity, workspace: workspaces[i], workspaceBytes: wsBytes[i], threads: threads,
                  window: win)
              }) != nil
            }
            return x.withUnsafeMutableBufferPointer { xb in
              window.run(ib.baseAddress!, c0: 0, count: windowChannels, into: xb.baseAddress!)
              return (try? runners[i].run(packed[i], x: UnsafePointer(xb.baseAddress!), n: n, y: yb.baseAddress!)) != nil
            }
          }
        }
      }
      return x.withUnsafeBufferPointer { xb in
        y.withUnsafeMutableBufferPointer { yb in
          (try? runners[i].run(packed[i], x: xb.baseAddress!, n: n, y: yb.baseAddress!)) != nil
        }
      }
    }
    for (i, time) in times.enumerated() {
      guard let fastest = time else { continue }
      measured[packed[i].format.description] = fastest
      if fastest < best.1 { best = (i, fastest) }
    }
    if let key, !measured.isEmpty {
      options.formatCache?.store(key, FormatCache.Entry(format: packed[best.0].format.description, measured: measured))
    }
    return ChosenWeight(matrix: packed[best.0], measured: measured)
  }
}
