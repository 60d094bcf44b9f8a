import Foundation

extension ModelBenchReport {
  /// The report as Markdown: the machine and settings, the summary (specific versus universal),
  /// then every row.
  public func markdown() -> String {
    let m = machine, s = settings
    let name = (model as NSString).lastPathComponent
    var out = "# Model benchmark: \(name) on \(m.id)\n\n"
    out += "Written by `sparrow bench model`; the JSON beside this file has every figure.\n\n"
    out += "- CPU: \(m.cpuModel), \(m.cores) cores; flags: \(m.isaFlags.joined(separator: " ")); "
    out += "caches: \(m.caches.joined(separator: ", ")); ISA active: \(m.isaActive); OpenMP: \(m.openMP ? "yes" : "no")\n"
    out += "- commit \(m.gitCommit); Swift \(m.swiftVersion); OpenBLAS \(m.openBLAS); \(m.os); date \(m.date)\n"
    let busy = (Double(m.loadAverage.split(separator: " ").first ?? "") ?? 0) > Double(m.cores) * 0.75
    out += "- load average (1/5/15 min) at start \(m.loadAverage), at end \(loadAverageAfter)"
    out += busy ? ": **the machine was busy** (other work shared the cores): absolute times are inflated; ratios within a block are fairer\n" : "\n"
    out += "- runtimes: \(runtimes.sorted { $0.key < $1.key }.map { $0.value }.joined(separator: "; "))\n"
    out += "- model `\(model)` (sha256 \(modelSha256.prefix(12))…); input "
    out += inputShapes.sorted { $0.key < $1.key }.map {
      "`\($0.key)` \($0.value.map(String.init).joined(separator: "×")) (\(inputSources[$0.key] ?? "?"))"
    }.joined(separator: ", ") + "\n"
    out += "- matrix: methods \(s.methods.joined(separator: ", ")); sparsity \(s.sparsities.map(pctS).joined(separator: ", ")) "
    out += "(2:4 is 50%; channel methods: of filters, \(s.channelMethod), keeping one channel of any group a sparsity "
    out += "would empty (--keep-one-per-group; listed in the pruner notes); block \(s.block)); formats \(s.formats.joined(separator: ", ")) "
    out += "where the method has them; threads \(s.threads.map(String.init).joined(separator: ", "))\n"
    out += "- timing: blocks of one thread count and one sparsity (with the unpruned baseline); in a block every case "
    out += "runs in \(s.rounds) round(s), order rotated per round, each round \(s.warmup) warm-up run(s) discarded then "
    out += "\(s.repeat) timed; ms = median of all timed runs (p25–p75); speedup = the same runtime's baseline median / "
    out += "this median in the same block, [min–max of the per-round ratios]\n"
    out += "- deviation against the unpruned model on Sparrow: max|y − y_dense| over all outputs, and that / max|y_dense| "
    out += "(one flipped pixel of a detector's map makes it 1); rel L2 = ‖y − y_dense‖₂ / ‖y_dense‖₂; task = top-1 agreement "
    out += "(a [N, C] output; cosine when its rows are unit-norm embeddings), mask IoU at 0.3 (a [N, 1, H, W] map in [0, 1]) or cosine (otherwise), on the first output; "
    out += "pruning is one-shot, no fine-tuning"
    if let n = evalImages { out += "; accuracy: top-1 on \(n) test images, one-shot pruned, on Sparrow (format auto)" }
    if let src = knownAccuracySource { out += "; fine-tuned: mean ± sd over seeds of the same-named variant in `\(src)`" }
    out += "\n- \(seconds) s in all\n"
    if interrupted { out += "\n**Interrupted (Ctrl-C)**: the rows below are those finished before it.\n" }
    if !notes.isEmpty { out += "\n" + notes.map { "- note: \($0)" }.joined(separator: "\n") + "\n" }
    out += "\n" + summaryMarkdown()
    out += "\n## Every row\n\n"
    out += "| variant | zeros | thr | runtime | format | layers | ms (p25–p75) | speedup [rounds] | max\\|Δ\\| | rel Δ | rel L2 | task | vs ORT |"
    out += accuracyHeader + "\n"
    out += "|---|--:|--:|---|---|---|--:|--:|--:|--:|--:|--:|--:|" + accuracyRule + "\n"
    for r in rows {
      out += "| \(r.variant) | \(pctS(r.weightZeroFraction)) | \(r.threads) | \(r.runtime) | \(r.format) | \(r.layerFormats) "
      if let e = r.error {
        out += "| error: \(e.replacingOccurrences(of: "|", with: "/").prefix(160)) | | | | | | |" + accuracyCells(r) + "\n"
        continue
      }
      let l = r.latency
      out += "| \(l.map { "\(ms($0.medianMs)) (\(ms($0.p25Ms))–\(ms($0.p75Ms)))" } ?? "—") | \(speedupText(r)) "
      out += "| \(r.deviation.map { sci($0.maxAbs) } ?? "—") | \(r.deviation.map { sci($0.maxRel) } ?? "—") "
      out += "| \(r.deviation?.relL2.map(sci) ?? "—") | \(r.deviation.map(taskText) ?? "—") "
      out += "| \(r.vsOnnxRuntime.map { check($0) } ?? "—") |" + accuracyCells(r) + "\n"
    }
    let notes = variants.flatMap { v in v.notes.map { "\(v.id): \($0)" } }
    if !notes.isEmpty { out += "\nPruner notes:\n\n" + notes.map { "- \($0)" }.joined(separator: "\n") + "\n" }
    return out
  }

  /// Per variant and thread count: Sparrow's speedup (auto, and its best forced format) beside
  /// the other runtimes' on the same file — specific speedup needs Sparrow's kernels, universal
  /// speedup (a shrunk model) shows on any runtime.
  public func summaryMarkdown() -> String {
    let others = runtimes.keys.filter { $0 != "sparrow" }.sorted()
    var out = "## Summary: specific versus universal speedup\n\n"
    out += "Speedup over the same runtime running the unpruned model (same block, same threads). "
    out += "*specific*: needs sparse kernels (unstructured, 2:4, block, channel zeros in place); "
    out += "*universal*: channel pruning shrunk to a smaller dense model.\n\n"
    out += "| variant | kind | zeros | thr | Sparrow auto | Sparrow best forced |"
    out += others.map { " \($0) |" }.joined() + " rel Δ | rel L2 | task |" + accuracyHeader + "\n"
    out += "|---|---|--:|--:|--:|--:|" + others.map { _ in "--:|" }.joined() + "--:|--:|--:|" + accuracyRule + "\n"
    for t in settings.threads {
      for v in variants where v.method != .none {
        let mine = rows.filter { $0.variant == v.id && $0.threads == t }
        guard !mine.isEmpty else { continue }
        let auto = mine.first { $0.runtime == "sparrow" && $0.format == "auto" }
        let best = mine.filter { $0.runtime == "sparrow" && $0.format != "auto" && $0.speedup != nil }
          .max { ($0.speedup ?? 0) < ($1.speedup ?? 0) }
        out += "| \(v.id) | \(v.method.speedupKind) | \(pctS(v.weightZeroFraction)) | \(t) | \(speedupX(auto?.speedup)) "
        out += "| \(best.map { "\(speedupX($0.speedup)) (\($0.format))" } ?? "—") |"
        for o in others { out += " \(speedupX(mine.first { $0.runtime == o }?.speedup)) |" }
        out += " \(auto?.deviation.map { sci($0.maxRel) } ?? "—") | \(auto?.deviation?.relL2.map(sci) ?? "—") |"
        out += " \(auto?.deviation.map(taskText) ?? "—") |"
        out += (auto.map(accuracyCells) ?? accuracyRule.replacingOccurrences(of: "--:", with: " ")) + "\n"
      }
    }
    out += "\nBaseline medians (unpruned model, ms): "
    var seen: [String] = []
    for r in rows where r.method == .none && (r.format == "auto" || r.format == "-") && r.latency != nil {
      let key = "\(r.runtime) \(r.threads) thr"
      if seen.contains(key) { continue }
      seen.append(key)
    }
    out += seen.map { key in
      let medians = rows.filter { "\($0.runtime) \($0.threads) thr" == key && $0.method == .none && ($0.format == "auto" || $0.format == "-") }
        .compactMap { $0.latency?.medianMs }
      return "\(key) \(medians.map(ms).joined(separator: " / "))"
    }.joined(separator: "; ") + " (one per block).\n"
    let failed = rows.filter { $0.error != nil }
    if !failed.isEmpty { out += "\n**\(failed.count) case(s) failed**: see the rows.\n" }
    let bad = rows.filter { !($0.vsOnnxRuntime?.agrees ?? true) }
    if !bad.isEmpty {
      out += "\n**\(bad.count) Sparrow row(s) differ from ONNX Runtime on the same file by more than 1e-4 relative (and 1e-5 absolute).**\n"
    }
    return out
  }

  private var hasAccuracy: Bool { evalImages != nil }
  private var hasKnown: Bool { rows.contains { $0.knownAccuracy != nil } }
  private var accuracyHeader: String {
    (hasAccuracy ? " accuracy (one-shot) |" : "") + (hasKnown ? " fine-tuned accuracy |" : "")
  }
  private var accuracyRule: String { (hasAccuracy ? "--:|" : "") + (hasKnown ? "--:|" : "") }
  private func accuracyCells(_ r: ModelBenchRow) -> String {
    var s = ""
    if hasAccuracy { s += " \(r.accuracy.map { String(format: "%.1f%%", $0 * 100) } ?? "—") |" }
    if hasKnown {
      s += " \(r.knownAccuracy.map { String(format: "%.1f ± %.1f%%", $0.mean * 100, $0.sd * 100) } ?? "—") |"
    }
    return s
  }

  private func speedupText(_ r: ModelBenchRow) -> String {
    guard let s = r.speedup else { return "—" }
    var t = speedupX(s)
    if let lo = r.speedupRoundMin, let hi = r.speedupRoundMax, r.roundMediansMs.count > 1 {
      t += String(format: " [%.2f–%.2f]", lo, hi)
    }
    return t
  }
  private func check(_ d: Deviation) -> String { sci(d.maxRel) + (d.agrees ? " ok" : " **FAIL**") }
}

func speedupX(_ v: Double?) -> String { v.map { String(format: "%.2f×", $0) } ?? "—" }
func pctS(_ s: Double) -> String {
  let p = s * 100
  return abs(p - p.rounded()) < 0.05 ? "\(Int(p.rounded()))%" : String(format: "%.1f%%", p)
}
func ms(_ v: Double) -> String {
  v >= 100 ? String(format: "%.1f", v) : v >= 1 ? String(format: "%.2f", v) : String(format: "%.3f", v)
}
/// "mask IoU 0.93" and the like, or "—".
func taskText(_ d: Deviation) -> String {
  guard let t = d.task, let v = d.taskValue else { return "—" }
  return t + " " + String(format: "%.3f", v)
}

func sci(_ v: Double) -> String { v == 0 ? "0" : String(format: "%.1e", v) }
