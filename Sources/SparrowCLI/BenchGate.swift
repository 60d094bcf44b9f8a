import ArgumentParser
import Dispatch
import Foundation
import Sparrow
import SparrowBench

/// `sparrow bench gate`: the runtime-pruning gate's wall-clock speedup over `off`, per mode,
/// from interleaved rounds in one process (one session per mode over one plan), with a 95%
/// interval, the output's deviation from `off`, what each mode skipped, and per gated layer the
/// fraction of exactly-zero input channels and the time of `off` against the first other mode.
struct BenchGateCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "gate",
    abstract: "Runtime-pruning gate: speedup over gate off per mode, interleaved, with output deviation.")

  @Argument(help: "The ONNX model.") var model: String
  @Option(name: .customLong("input"), help: "NAME=FILE.npy (repeatable). Inputs not given get seeded random data.")
  var inputs: [String] = []
  @Option(help: "Gate modes, comma-separated (the first is the baseline).") var gates = "off,zero,topk:0.75,topk:0.5,topk:0.25"
  @Option(help: "Interleaved rounds (each runs every mode, in a shuffled order).") var rounds = 20
  @Option(name: .customLong("runs-per-round"), help: "Timed runs per mode and round (their median is the round's time).")
  var runsPerRound = 3
  @Option(help: "Untimed runs per mode before the rounds.") var warmup = 3
  @Option(help: "Write every figure as JSON here.") var json: String?
  @Option(help: "Write the Markdown table here.") var markdown: String?
  @Option(help: "A label for the table (e.g. the input's name).") var label: String?
  @OptionGroup var plan: PlanArguments
  @OptionGroup var calibration: GateCalibrationArguments
  @Flag(
    name: .customLong("cpu-time"),
    help: "Time each run by the calling thread's CPU time (1 thread only): on a machine loaded far beyond its cores, wall time mostly measures the scheduler.")
  var cpuTime = false

  /// Nanoseconds: the calling thread's CPU time with --cpu-time, else wall time.
  func clock() -> UInt64 {
    guard cpuTime else { return DispatchTime.now().uptimeNanoseconds }
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
  }

  struct ModeResult: Codable {
    var gate: String
    var medianMs: Double
    var speedup: Double
    var speedupLow: Double
    var speedupHigh: Double
    var skippedMACFraction: Double
    var maxAbsDeviation: Double
    var relativeDeviation: Double
    /// Cosine similarity to the baseline's output: over the whole first float output, and the
    /// least over its rows (last dimension: a token's embedding).
    var cosine: Double
    var minRowCosine: Double
    var layers: [GateLayerStats]
  }

  struct LayerTime: Codable {
    var node: String
    var zeroInputFraction: Double?
    var baselineMs: Double
    var modeMs: Double
    var mode: String
  }

  struct Report: Codable {
    var model: String
    var label: String?
    var machine: MachineInfo
    var threads: Int
    var rounds: Int
    var runsPerRound: Int
    var modes: [ModeResult]
    var layers: [LayerTime]
    var method: String
    /// The learned gates' score steps (`GateScore`, FuseGateScore) as a fraction of the summed
    /// step times of the profiled runs, baseline then the first other mode; nil without them.
    var gateScoreShare: [Double]? = nil
  }

  func run() throws {
    guard rounds >= 2, runsPerRound >= 1, warmup >= 0 else { throw ValidationError("need --rounds >= 2, --runs-per-round >= 1") }
    let modes: [GateMode]
    do { modes = try gates.split(separator: ",").map { try GateMode(parsing: String($0)) } } catch {
      throw ValidationError("--gates: \(error)")
    }
    guard modes.count >= 2 else { throw ValidationError("--gates needs a baseline and at least one other mode") }
    if cpuTime, (try plan.options()).threads != 1 { throw ValidationError("--cpu-time needs --threads 1") }
    var shapes = try plan.parsedShapes()
    let given = try readInputs(inputs, pinning: &shapes)
    let p: Plan, m: Model
    var options = try plan.options()
    options.gateLinears = calibration.needsLinears(modes)
    do {
      m = try Model(contentsOf: URL(fileURLWithPath: model), optimize: !plan.noOptimize, options: options)
      p = try m.plan(shapes: shapes, values: given)
    } catch { throw fail(error.message) }
    let gateCalibration = try calibration.calibrate(m, for: modes)
    let feeds = try makeFeeds(for: p, given: given, seed: 1)
    let sessions = modes.map { m -> Session in
      let s = Session(plan: p)
      s.gate = m
      s.gateCalibration = gateCalibration
      return s
    }
    for s in sessions { if let problem = s.gateProblem() { throw fail(problem) } }
    var outputs: [[String: Tensor]] = []
    for s in sessions {
      do {
        var o: [String: Tensor] = [:]
        for _ in 0..<max(warmup, 1) { o = try s.run(feeds) }
        outputs.append(o)
      } catch { throw fail(error.message) }
      s.gateLog.reset()
    }
    // Interleaved rounds: every mode once per round, in a shuffled order, so drift of a shared
    // machine falls on all modes alike.
    var times = [[Double]](repeating: [], count: modes.count)
    var order = Array(modes.indices)
    var shuffle = SplitMix(seed: 7)
    let total = rounds * modes.count
    for r in 0..<rounds {
      for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(shuffle.next() % UInt64(i + 1))) }
      for (k, m) in order.enumerated() {
        var t: [Double] = []
        for _ in 0..<runsPerRound {
          let s0 = clock()
          do { _ = try sessions[m].run(feeds) } catch { throw fail(error.message) }
          t.append(Double(clock() - s0) / 1e6)
        }
        times[m].append(median(t))
        FileHandle.standardError.write(Data("\rround \(r + 1)/\(rounds)  \(r * modes.count + k + 1)/\(total)   ".utf8))
      }
    }
    FileHandle.standardError.write(Data("\n".utf8))
    // Per-step times, off against the first other mode, in separate profiled passes.
    // Per-step medians over single profiled runs of the baseline and the first other mode,
    // alternated like the rounds (a mean would take every preemption; runs of one mode after
    // the other would take the machine's drift as a difference).
    var perStep = [[[Double]]](repeating: [[Double]](repeating: [], count: p.stepNodes.count), count: 2)
    for i in [0, 1] { sessions[i].profiling = true }
    for _ in 0..<max(rounds * runsPerRound / 2, 5) {
      for i in [0, 1] {
        sessions[i].resetProfile()
        _ = try? sessions[i].run(feeds)
        for (k, ms) in sessions[i].stepProfile.enumerated() { perStep[i][k].append(ms) }
      }
    }
    for i in [0, 1] { sessions[i].profiling = false }
    let profiled = perStep.map { $0.map(median) }
    var results: [ModeResult] = []
    var bootRNG = SplitMix(seed: 11)
    for (m, mode) in modes.enumerated() {
      let ratios = zip(times[0], times[m]).map { $0 / $1 }
      var boots: [Double] = []
      for _ in 0..<2000 {
        boots.append(median((0..<ratios.count).map { _ in ratios[Int(bootRNG.next() % UInt64(ratios.count))] }))
      }
      boots.sort()
      let (dev, rel) = deviation(outputs[m], outputs[0])
      let (cos, rowCos) = cosines(outputs[m], outputs[0])
      results.append(
        ModeResult(
          gate: mode.description, medianMs: median(times[m]), speedup: median(ratios), speedupLow: boots[50],
          speedupHigh: boots[1949], skippedMACFraction: sessions[m].gateLog.skippedFraction,
          maxAbsDeviation: dev, relativeDeviation: rel, cosine: cos, minRowCosine: rowCos, layers: sessions[m].gateLog.layers))
    }
    let zeroSession = modes.firstIndex(of: .zero).map { sessions[$0] }
    var layerTimes: [LayerTime] = []
    for (i, node) in p.stepNodes.enumerated() {
      guard let l = sessions[1].gateLog.layers.first(where: { $0.node == node.name }) else { continue }
      layerTimes.append(
        LayerTime(
          node: l.node,
          zeroInputFraction: zeroSession?.gateLog.layers.first(where: { $0.node == node.name })?.skippedInputFraction,
          baselineMs: profiled[0][i], modeMs: profiled[1][i], mode: modes[1].description))
    }
    let scoreSteps = p.stepNodes.indices.filter { p.stepNodes[$0].op == "GateScore" }
    let scoreShare = scoreSteps.isEmpty
      ? nil : [0, 1].map { i in scoreSteps.reduce(0) { $0 + profiled[i][$1] } / max(profiled[i].reduce(0, +), 1e-12) }
    let machine = MachineInfo.current(repoRoot: nil)
    var report = Report(
      model: model, label: label, machine: machine, threads: p.options.threads, rounds: rounds, runsPerRound: runsPerRound,
      modes: results, layers: layerTimes,
      method: "one process, one session per mode over one plan; \(rounds) rounds, modes in a shuffled order per round; a round's time is the median of \(runsPerRound) runs (\(cpuTime ? "the calling thread's CPU time" : "wall time")); speedup = median over rounds of (baseline time / mode time) with a 95% bootstrap interval (2000 resamples of rounds)")
    report.gateScoreShare = scoreShare
    let md = markdownTable(report)
    print(md)
    if let markdown { try md.write(toFile: markdown, atomically: true, encoding: .utf8) }
    if let json {
      let enc = JSONEncoder()
      enc.outputFormatting = [.prettyPrinted, .sortedKeys]
      try enc.encode(report).write(to: URL(fileURLWithPath: json))
    }
  }

  func markdownTable(_ r: Report) -> String {
    var s = "### \(URL(fileURLWithPath: r.model).lastPathComponent)\(r.label.map { " — \($0)" } ?? "")\n\n"
    s += "Machine `\(r.machine.id)`, commit `\(r.machine.gitCommit)`, \(r.threads) thread(s), load \(r.machine.loadAverage). \(r.method).\n\n"
    s += "| gate | median ms | speedup vs \(r.modes[0].gate) | 95% interval | MACs skipped | output deviation (max abs / max ref) | cosine (all / least row) |\n"
    s += "|---|--:|--:|--:|--:|--:|--:|\n"
    for m in r.modes {
      s += String(
        format: "| %@ | %.3f | %.3f× | %.3f–%.3f | %.1f%% | %.2e | %.5f / %.5f |\n", m.gate, m.medianMs, m.speedup,
        m.speedupLow, m.speedupHigh, 100 * m.skippedMACFraction, m.relativeDeviation, m.cosine, m.minRowCosine)
    }
    if let share = r.gateScoreShare, share.count == 2 {
      s += String(
        format: "\nThe learned gates' score steps (GateScore: pool, FC, top-k mask): %.1f%% of the summed step time with %@, %.1f%% with %@ (profiled runs).\n",
        100 * share[0], r.modes[0].gate, 100 * share[1], r.layers.first?.mode ?? r.modes[1].gate)
    }
    if !r.layers.isEmpty {
      s += "\nPer gated layer (medians of single profiled runs, the two modes alternated; step times include the gate's own cost):\n\n"
      s += "| layer | exactly-zero input channels | \(r.modes[0].gate) ms | \(r.layers[0].mode) ms | speedup |\n|---|--:|--:|--:|--:|\n"
      for l in r.layers {
        s += "| \(l.node) | " + (l.zeroInputFraction.map { String(format: "%.1f%%", 100 * $0) } ?? "–")
          + String(format: " | %.3f | %.3f | %.2f× |\n", l.baselineMs, l.modeMs, l.modeMs > 0 ? l.baselineMs / l.modeMs : 0)
      }
    }
    return s
  }
}

func median(_ a: [Double]) -> Double {
  let s = a.sorted()
  guard !s.isEmpty else { return .nan }
  return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// Cosine similarity of the first float output (by name) to the reference's: over the whole
/// tensor, and the least over its rows (the last dimension).
func cosines(_ a: [String: Tensor], _ ref: [String: Tensor]) -> (Double, Double) {
  guard let name = ref.keys.sorted().first(where: { ref[$0]!.dtype == .float32 }), let t = a[name], let r = ref[name],
    t.count == r.count, t.count > 0
  else { return (.nan, .nan) }
  func cos(_ x: ArraySlice<Float>, _ y: ArraySlice<Float>) -> Double {
    var d = 0.0, nx = 0.0, ny = 0.0
    for (u, v) in zip(x, y) {
      d += Double(u) * Double(v)
      nx += Double(u) * Double(u)
      ny += Double(v) * Double(v)
    }
    return nx == 0 && ny == 0 ? 1 : d / (nx.squareRoot() * ny.squareRoot())
  }
  let x = t.floats, y = r.floats
  let width = max(1, r.shape.last ?? 1)
  var least = 1.0
  for start in stride(from: 0, to: x.count, by: width) {
    least = min(least, cos(x[start..<min(start + width, x.count)], y[start..<min(start + width, y.count)]))
  }
  return (cos(x[...], y[...]), least)
}

/// Largest absolute difference over every float output, and that over the reference's largest |value|.
func deviation(_ a: [String: Tensor], _ ref: [String: Tensor]) -> (Double, Double) {
  var dev = 0.0, scale = 0.0
  for (name, r) in ref {
    guard let t = a[name], t.dtype == .float32, r.dtype == .float32 else { continue }
    for (x, y) in zip(t.floats, r.floats) {
      dev = max(dev, Double(abs(x - y)))
      scale = max(scale, Double(abs(y)))
    }
  }
  return (dev, scale > 0 ? dev / scale : dev)
}
