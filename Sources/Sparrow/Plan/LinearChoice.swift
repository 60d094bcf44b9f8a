/// MatMul/Gemm with a constant weight: the step of the format `FormatChooser` picked (OpenBLAS
/// on A in place when dense; the sparse kernels through transposes otherwise), or the
/// pixel-major kernel on A and Y as stored (`PanelLinear`), whichever measures faster as a whole
/// step at the layer's real shape. The panel form keeps every weight but the columns a 16-output
/// panel has no nonzero in, so it is tried where that can pay: below `maxZeroFraction` zeros,
/// or when the panels keep at most `DirectConvChoice.maxKeptPanelColumns` of their columns
/// (N:M shared by 16 rows). The decision is cached like format timings (FormatCache).
enum LinearChoice {
  static let maxZeroFraction = 0.75

  static func choose(
    _ c: inout BuildContext, _ step: LinearStep, weights w: [Float], profile: SparsityProfile
  ) throws(ModelError) -> any Step {
    var step = step
    let algorithm = c.options.linearAlgorithm
    guard algorithm != .kernels, !step.aTransposed, step.rows > 0 else { return step }
    if algorithm == .measure {
      guard case .auto = c.options.format else { return step }
      guard
        profile.zeroFraction < maxZeroFraction
          || DirectConvChoice.keptPanelColumns(w, rows: step.out, cols: step.k) <= DirectConvChoice.maxKeptPanelColumns
      else { return step }
    }
    let panel: PanelLinear
    do {
      panel = try PanelLinear(out: step.out, k: step.k, weights: w)
    } catch {
      if algorithm == .panel { throw c.error(error.message) }
      return step
    }
    var panelStep = step
    panelStep.panel = panel
    panelStep.dense = nil
    panelStep.workspaceBytes = 0
    let name = "panel", current = "\(step.packed.format) step"
    var measured: [String: Double] = [:]
    var cached = false
    var usePanel = algorithm == .panel
    if algorithm == .measure {
      let key = c.options.formatCache.map { _ in
        "linear-panel|r\(step.rows)|"
          + FormatCache.key(
            weights: w, rows: step.out, cols: step.k, n: step.rows, kPerChannel: 1, candidates: [step.packed.format],
            threads: c.options.threads)
      }
      if let key, let hit = c.options.formatCache?.lookup(key) {
        (measured, cached, usePanel) = (hit.measured, true, hit.format == name)
      } else {
        let times = time([step, panelStep], threads: c.options.threads)
        if let t = times[0] { measured[current] = t }
        if let t = times[1] { measured[name] = t }
        usePanel = (times[1] ?? .infinity) < (times[0] ?? .infinity)
        if let key, !measured.isEmpty {
          c.options.formatCache?.store(key, FormatCache.Entry(format: usePanel ? name : current, measured: measured))
        }
      }
    }
    var layer = c.layer
    for (k, v) in measured { layer?.measured[k] = v }
    if let k = layer?.measured[step.packed.format.description], let s = measured[current], let p = measured[name] {
      let t = LinearTimings(kernel: k, step: s, panel: p)
      panelStep.timings = t
      step.timings = t
    }
    let wasCached = layer?.measuredFromCache ?? false
    layer?.measuredFromCache = wasCached || cached
    if usePanel {
      layer?.format = name
      layer?.kernel = "plinear+" + DirectSparseConv.pixelKernelName
    }
    c.layer = layer
    return usePanel ? panelStep : step
  }

  /// Fastest milliseconds of each step on random A, interleaved run by run, caches evicted
  /// before each (the weights come from memory, as inside a model); nil where a step failed.
  static func time(_ steps: [LinearStep], threads: Int) -> [Double?] {
    let s0 = steps[0]
    let repeats = Measure.repeats(flops: 2.0 * Double(s0.rows * s0.k * s0.out), budget: 2e8, range: 3...15)
    return Measure.withStepContext(
      input: TensorType(.float32, [s0.rows, s0.k]), output: TensorType(.float32, [s0.rows, s0.out]),
      scratchBytes: steps.map(\.scratchBytes).max() ?? 0, threads: threads
    ) { ctx, a in
      let warm = { ctx.output(0, Float.self)[0] = Measure.asInModel(input: a, count: s0.rows * s0.k) }
      return Measure.fastestInterleaved(
        candidates: steps.count, repeats: repeats, threadCPUTime: threads == 1, before: warm
      ) { i in (try? steps[i].run(ctx)) != nil }
    }
  }
}
