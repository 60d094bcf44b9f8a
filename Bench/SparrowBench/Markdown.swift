import Foundation

extension KernelBenchReport {
  /// The report as Markdown: the machine, the settings, every row, then the summary.
  public func markdown() -> String {
    let m = machine
    var out = "# Kernel benchmark: \(m.id)\n\n"
    out += "- CPU: \(m.cpuModel), \(m.cores) cores; flags: \(m.isaFlags.joined(separator: " ")); "
    out += "caches: \(m.caches.joined(separator: ", "))\n"
    out += "- ISA active: \(m.isaActive) (detected \(m.isaDetected)); OpenMP: \(m.openMP ? "yes" : "no")\n"
    out += "- commit \(m.gitCommit); Swift \(m.swiftVersion); OpenBLAS \(m.openBLAS); \(m.os)\n"
    out += "- date \(m.date); load average at start \(m.loadAverage)\n"
    let s = settings
    out += "- shapes: \(s.lists.joined(separator: ", ")); sparsity \(s.sparsities.map { fmt($0) }.joined(separator: ","))"
    out += "; formats \(s.formats.joined(separator: ",")); blocks \(s.blocks.joined(separator: ","))"
    out += "; threads \(s.threads.map(String.init).joined(separator: ","))\n"
    out += "- timing: dense and format run alternately on the same preallocated X/Y; \(s.warmupRuns) warm-up "
    out += "run(s) discarded; then pairs until \(s.minTime) s and at least \(s.minRuns) pairs (cap \(s.maxRuns)); "
    out += "median shown, spread p10–p90; seed \(s.seed)\n"
    out += "- eff GF/s = 2·nnz·N/t; dense-eq GF/s = 2·M·N·K/t; speedup = median dense / median format\n\n"

    out += "| shape MxNxK | n× | format | sparsity | thr | backend | kernel | ms | p10–p90 ms | dense ms "
    out += "| eff GF/s | dense-eq GF/s | dense GF/s | speedup | packed KiB | dense KiB | check |\n"
    out += "|---|--:|---|--:|--:|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n"
    for r in rows {
      let head = "| \(r.shapeName) | \(r.count) | \(r.format) | \(fmt(r.sparsity)) | \(r.threads) | \(r.backend) "
      if let e = r.error {
        out += head + "| \(r.kernel) | — | — | — | — | — | — | — | — | — | error: \(e.replacingOccurrences(of: "|", with: "/")) |\n"
        continue
      }
      guard let f = r.formatTime, let d = r.denseTime else { continue }
      out += head + "| \(r.kernel) | \(ms(f.medianMs)) | \(ms(f.p10Ms))–\(ms(f.p90Ms)) | \(ms(d.medianMs)) "
      out += "| \(gf(r.effectiveGflops)) | \(gf(r.denseEquivalentGflops)) | \(gf(r.denseGflops)) "
      out += "| \(String(format: "%.2f", r.speedup))× | \(kib(r.packedBytes)) | \(kib(r.densePackedBytes)) | \(r.check) |\n"
    }
    out += "\n" + summaryMarkdown()
    return out
  }

  /// The summary table alone.
  public func summaryMarkdown() -> String {
    var out = "## Summary: weighted speedup over dense, per shape list\n\n"
    out += "Weighted speedup = Σ count·t_dense / Σ count·t_format over the list's shapes (median times): "
    out += "the speedup of running all those layers, each as many times as the model has it, back to back "
    out += "(so each shape weighs in by its dense FLOPs × count). min/max: over single shapes.\n\n"
    out += "| list | format | sparsity | thr | backend | shapes | weighted speedup | min | max |\n"
    out += "|---|---|--:|--:|---|--:|--:|--:|--:|\n"
    for s in summary {
      let format = settings.kernels == KernelSelection.listed.rawValue ? "\(s.format) \(s.kernel ?? "")" : s.format
      out += "| \(s.list) | \(format) | \(fmt(s.sparsity)) | \(s.threads) | \(s.backend) | \(s.shapes) "
      out += "| \(String(format: "%.2f", s.weightedSpeedup))× | \(String(format: "%.2f", s.minSpeedup))× "
      out += "| \(String(format: "%.2f", s.maxSpeedup))× |\n"
    }
    let failed = rows.filter { $0.error != nil || $0.check.hasPrefix("FAIL") }
    if !failed.isEmpty {
      out += "\n**\(failed.count) row(s) failed** (error or output differs from dense): see the table.\n"
    }
    return out
  }

  private func fmt(_ x: Double) -> String {
    var s = String(format: "%.3f", x)
    while s.hasSuffix("0") { s.removeLast() }
    if s.hasSuffix(".") { s.removeLast() }
    return s
  }
  private func ms(_ x: Double) -> String {
    x >= 100 ? String(format: "%.1f", x) : x >= 1 ? String(format: "%.3f", x) : String(format: "%.4f", x)
  }
  private func gf(_ x: Double) -> String { String(format: "%.1f", x) }
  private func kib(_ b: Int) -> String { String(format: "%.1f", Double(b) / 1024) }
}
