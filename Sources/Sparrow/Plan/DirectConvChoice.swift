/// k x k convolutions (groups = 1): im2col + SpMM (or the packed dense kernels), or the direct
/// convolution (no im2col; sparse or dense), whichever measures faster on this machine at the layer's real
/// shape. The decision is cached like format timings (FormatCache), keyed also by the window.
enum DirectConvChoice {
  /// Below this zero fraction the direct form tried is the dense one (every weight kept,
  /// register-blocked: it wins on small-channel and stem convolutions, where im2col panels are
  /// reused by few rows); from it on, the sparse one. `PlanOptions.convAlgorithm` can force
  /// either form.
  static let minZeroFraction = 0.5

  /// The pixel-major form is tried on sparse weights when its 16-channel panels keep at most
  /// this share of their columns (the rest are zero in all 16 rows and skipped).
  static let maxKeptPanelColumns = 0.75
  /// Below this zero fraction the pixel-major dense form is timed on sparse weights too.
  static let maxPixelZeroFraction = 0.75

  /// The share of (panel, column) pairs with a nonzero, panels of `DirectSparseConv.pixelPanelRows`
  /// output channels of the row-major `rows` x `cols` weight.
  static func keptPanelColumns(_ w: [Float], rows: Int, cols: Int) -> Double {
    let nr = DirectSparseConv.pixelPanelRows
    let panels = (rows + nr - 1) / nr
    guard panels > 0, cols > 0 else { return 1 }
    var kept = 0
    w.withUnsafeBufferPointer { w in
      for p in 0..<panels {
        for j in 0..<cols {
          var m = p * nr
          while m < min(p * nr + nr, rows) && w[m * cols + j] == 0 { m += 1 }
          if m < min(p * nr + nr, rows) { kept += 1 }
        }
      }
    }
    return Double(kept) / Double(panels * cols)
  }

  static func choose(
    _ c: inout BuildContext, im2col: ConvStep, weights w: [Float], profile: SparsityProfile
  ) throws(ModelError) -> any Step {
    let g = im2col.geometry
    let m = im2col.packed[0].rows
    // Few zeros: the dense direct kernels (every weight kept, register-blocked), channel-major
    // (6 channels x 16 pixels) and pixel-major (6 pixels x 16 channels: narrow and strided
    // outputs); else the sparse one (a shifted row per nonzero). `.pixel` forces the
    // pixel-major form whatever the zeros.
    let algorithm = c.options.convAlgorithm
    let dense = profile.zeroFraction < minZeroFraction
    // Zeros shared by whole 16-channel panels (N:M pruned with `--share-rows 16`): the
    // pixel-major form drops those columns, so it is a candidate beside the sparse one; so it is
    // below `maxPixelZeroFraction` zeros anyway (plain 2:4: the dense kernel with the zeros kept
    // can beat the sparse ones, at two threads especially).
    let pixelCandidate =
      !dense
      && (profile.zeroFraction < maxPixelZeroFraction
        || keptPanelColumns(w, rows: m, cols: g.c * g.kh * g.kw) <= maxKeptPanelColumns)
    let forms: [(name: String, dense: Bool, pixel: Bool)] =
      algorithm == .pixel
      ? [("direct-pixel", true, true)]
      : dense
        ? [("direct-dense", true, false), ("direct-pixel", true, true)]
        : [("direct", false, false)] + (pixelCandidate ? [("direct-pixel", true, true)] : [])
    let forced = algorithm == .direct || algorithm == .pixel
    // A direct form is a candidate: where it cannot be built (a padded input past its
    // workspace limit), it is left out (the im2col step stands), unless it was forced.
    var candidates: [(name: String, step: DirectConvStep, pixel: Bool)] = []
    for f in forced ? [forms[0]] : forms {
      do {
        let conv = try DirectSparseConv(g.kernelShape(), outputChannels: m, weights: w, dense: f.dense, pixel: f.pixel)
        candidates.append((f.name, DirectConvStep(geometry: g, conv: conv, bias: im2col.bias, lo: im2col.lo, hi: im2col.hi), f.pixel))
      } catch {
        if forced { throw c.error(error.message) }
      }
    }
    if candidates.isEmpty { return im2col }
    let threads = c.options.threads
    let im2colName = "im2col+\(im2col.packed[0].format)"
    let key = c.options.formatCache.map { _ in
      "\(forms.map(\.name).joined(separator: ","))|\(g.c)x\(g.h)x\(g.w) k\(g.kh)x\(g.kw) s\(g.sh),\(g.sw) d\(g.dh),\(g.dw) p\(g.padTop),\(g.padLeft) o\(g.ho)x\(g.wo)|"
        + FormatCache.key(
          weights: w, rows: m, cols: g.c * g.kh * g.kw, n: g.ho * g.wo, kPerChannel: g.kh * g.kw,
          candidates: [im2col.packed[0].format], threads: threads)
    }
    var measured: [String: Double] = [:]
    var cached = false
    if forced {
      // Not timed.
    } else if let key, let hit = c.options.formatCache?.lookup(key) {
      measured = hit.measured
      cached = true
    } else {
      let times = time([im2col] + candidates.map(\.step), geometry: g, m: m, threads: threads)
      measured[im2colName] = times[0] ?? .infinity
      for (d, t) in zip(candidates, times.dropFirst()) { measured[d.name] = t ?? .infinity }
      if let key {
        let best = measured.min { $0.value < $1.value }!.key
        c.options.formatCache?.store(key, FormatCache.Entry(format: best, measured: measured))
      }
    }
    var layer = c.layer
    for (k, v) in layer?.measured ?? [:] where measured[k] == nil { measured[k] = v }
    let chosen =
      forced
      ? candidates.first
      : candidates.filter { (measured[$0.name] ?? .infinity) < (measured[im2colName] ?? .infinity) }
        .min { (measured[$0.name] ?? .infinity) < (measured[$1.name] ?? .infinity) }
    layer?.measured = measured
    let wasCached = layer?.measuredFromCache ?? false
    layer?.measuredFromCache = cached || wasCached
    if let chosen {
      layer?.format = chosen.name
      layer?.kernel =
        chosen.pixel
        ? "direct_pixel+" + DirectSparseConv.pixelKernelName
        : chosen.step.conv.isDense
          ? "direct_dense+" + DirectSparseConv.denseKernelName : "direct_conv+" + DepthwiseKernel.kernelName
    }
    c.layer = layer
    guard let chosen else { return im2col }
    return chosen.step
  }

  /// Fastest milliseconds of the whole batch through each step, on one random input, nil where a
  /// step failed: interleaved run by run, each run meeting the caches as a layer does inside a
  /// model (the weights evicted, the input just written), as the format and linear choices are
  /// timed (Measure.fastestInterleaved). Timed one after the other with warm caches, ResNet-18's
  /// 3x3 layers at 2 threads went to the packed GEMM on im2col windows in one plan of two (Zen 4):
  /// 1.34-1.72 ms in the model against 1.08-1.19 for the pixel-major form it beat in isolation.
  static func time(_ steps: [any Step], geometry g: WindowGeometry, m: Int, threads: Int) -> [Double?] {
    let flops = 2.0 * Double(g.n * m * g.c * g.kh * g.kw * g.ho * g.wo)
    let repeats = Measure.repeats(flops: flops, budget: 1e8, range: 3...7)
    return Measure.withStepContext(
      input: TensorType(.float32, [g.n, g.c, g.h, g.w]), output: TensorType(.float32, [g.n, m, g.ho, g.wo]),
      scratchBytes: steps.map(\.scratchBytes).max() ?? 0, threads: threads
    ) { ctx, x in
      let warm = { ctx.output(0, Float.self)[0] = Measure.asInModel(input: x, count: g.n * g.c * g.h * g.w) }
      return Measure.fastestInterleaved(
        candidates: steps.count, repeats: repeats, threadCPUTime: threads == 1, before: warm
      ) { i in (try? steps[i].run(ctx)) != nil }
    }
  }
}
