import Dispatch
import Foundation
import Sparrow

/// What the bench tells its caller while it runs (the CLI draws a progress bar from it).
public struct ModelBenchProgress: Sendable {
  /// Work done and in all (a unit is one plan, or one case's round), and the seconds so far.
  public var done: Int, total: Int
  public var elapsed: Double
  /// What runs now, e.g. `block 2/4 (2 thr, 90%): mag90 csr, round 1/3`.
  public var what: String

  /// Seconds left at the pace so far (nil before anything finished).
  public var eta: Double? { done > 0 && total > done ? elapsed / Double(done) * Double(total - done) : nil }
}

/// `sparrow bench model`: the pruning-method x sparsity x format x threads matrix on one model,
/// Sparrow against itself unpruned and against other runtimes on the very same files.
///
/// Timing: the matrix is cut into blocks (one thread count, one sparsity, plus the unpruned
/// baseline), so that a block's plans fit in memory together. Within a block every case (Sparrow
/// variant x format, and each other runtime x variant, each with one warm session) runs in
/// rounds, in an order rotated from round to round; in each round a case does `warmup` untimed
/// runs and `repeat` timed ones. Drift of a shared machine thus hits a case and its baseline alike.
/// Speedup = the baseline's median / the case's median over all timed runs, on the same runtime
/// in the same block; the per-round ratios give its range.
public enum ModelBench {
  public static func run(
    _ o: ModelBenchOptions, machine: MachineInfo, runtimeNotes: [String] = [],
    progress: (ModelBenchProgress) -> Void = { _ in }, stop: () -> Bool = { false }
  ) throws(BenchError) -> ModelBenchReport {
    try o.validate()
    let start = DispatchTime.now().uptimeNanoseconds
    func elapsed() -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
    var report = ModelBenchReport(
      machine: machine, model: o.model, modelSha256: sha256(o.model), settings: ModelBenchSettings(o))
    report.notes = runtimeNotes
    report.runtimes["sparrow"] = "sparrow \(machine.gitCommit)"
    report.knownAccuracySource = o.knownAccuracySource

    let graph: Graph
    do { graph = try ONNXImporter.load(contentsOf: URL(fileURLWithPath: o.model)) } catch {
      throw BenchError("cannot load \(o.model): \(error.message)")
    }

    // Variants, with their accuracy on the eval set (one plan each, outside the timed blocks).
    var specs: [(BenchMethod, Double?)] = [(.none, nil)]
    for m in o.methods where m != .none {
      for s in o.sparsities(for: m) where !specs.contains(where: { $0.0 == m && $0.1 == s }) { specs.append((m, s)) }
    }
    var accuracy: [String: Double] = [:]
    var done = 0
    // Plans: one per Sparrow case; rounds: one unit per case per round. Estimated up front.
    let runtimesCount = o.runtimes.count
    let casesPerThread = specs.reduce(0) { n, s in n + o.configs(for: s.0, threads: 1).count + runtimesCount }
    let blocksPerThread = Set(specs.compactMap { $0.1 }).count
    var total = specs.count * (o.evalLabels == nil ? 1 : 2)
      + o.threads.count * (casesPerThread + max(0, blocksPerThread - 1) * (1 + runtimesCount)) * (1 + o.rounds)
    func tick(_ what: String) {
      done += 1
      total = max(total, done + 1)
      progress(ModelBenchProgress(done: done, total: total, elapsed: elapsed(), what: what))
    }
    for (m, s) in specs {
      if stop() { break }
      progress(ModelBenchProgress(done: done, total: total, elapsed: elapsed(), what: "pruning \(m.rawValue) \(s.map { "\($0)" } ?? "")"))
      do {
        let v = try ModelVariants.make(graph, method: m, sparsity: s, options: o)
        report.variants.append(v)
        if o.evalLabels != nil {
          accuracy[v.id] = try evaluate(v.file, o)
          tick("accuracy \(v.id)")
        }
      } catch {
        if m == .none { throw error }
        report.notes.append("variant skipped: \(error.message)")
      }
      tick("pruned \(m.rawValue)")
    }
    report.evalImages = o.evalLabels?.count

    // Inputs: the given ones, seeded random data for the rest (written beside the variants, so
    // the other runtimes read the very same values).
    let baselineFile = report.variants[0].file
    let feeds = try makeFeeds(baselineFile, o, &report)
    var inputFile: String? = nil
    if feeds.count == 1, let (name, t) = feeds.first {
      if let src = o.inputSources[name], FileManager.default.fileExists(atPath: src) {
        inputFile = src
      } else {
        let path = (o.cacheDir as NSString).appendingPathComponent("input-\(sanitize(name)).npy")
        do { try NPY.write(t, to: URL(fileURLWithPath: path)) } catch {
          throw BenchError("cannot write \(path): \(error)")
        }
        inputFile = path
      }
    } else if !o.runtimes.isEmpty {
      report.notes.append("other runtimes skipped: runner.py feeds one input and this model has \(feeds.count)")
    }
    let runtimes = inputFile == nil ? [] : o.runtimes
    let shapes = feeds.mapValues(\.shape)

    // Blocks: per thread count, per sparsity; 2:4 joins the 50% block (or gets its own).
    var groups: [(label: String, variants: [ModelVariant])] = []
    let pruned = report.variants.dropFirst()
    var levels: [Double] = []
    for v in pruned { if let s = v.sparsity, !levels.contains(s) { levels.append(s) } }
    for s in levels.sorted() { groups.append(("\(pct(s))", [report.variants[0]] + pruned.filter { $0.sparsity == s })) }
    if groups.isEmpty { groups.append(("baseline", [report.variants[0]])) }

    var reference: [String: Tensor]? = nil
    let log = runnerLog(o)
    var blockIndex = 0
    outer: for t in o.threads {
      for (label, variants) in groups {
        if stop() { break outer }
        blockIndex += 1
        let where_ = "block \(blockIndex)/\(o.threads.count * groups.count) (\(t) thr, \(label))"
        var cases: [ModelCase] = []
        // Sparrow cases: one plan and session each.
        for v in variants {
          for c in o.configs(for: v.method, threads: t) {
            if stop() { break outer }
            var row = baseRow(v, runtime: "sparrow", format: c.format, threads: t, block: blockIndex)
            row.accuracy = accuracy[v.id]
            row.knownAccuracy = o.knownAccuracy[v.id]
            do {
              let sc = try SparrowCase(file: v.file, config: c, shapes: shapes, feeds: feeds)
              row.layerFormats = sc.layerFormats
              if reference == nil, v.method == .none, c.format == "auto" { reference = sc.output }
              if let ref = reference { row.deviation = Deviation.between(sc.output, ref) }
              cases.append(ModelCase(row: row, sparrow: sc))
            } catch {
              row.error = error.message
              cases.append(ModelCase(row: row))
            }
            tick("\(where_): planned \(v.id) \(c.format)")
          }
        }
        // Other runtimes: one warm session per variant file.
        for rt in runtimes {
          for v in variants {
            if stop() { break outer }
            var row = baseRow(v, runtime: rt.name, format: "-", threads: t, block: blockIndex)
            do {
              let w = try RuntimeWorker(rt, model: v.file, input: inputFile!, threads: t, log: log)
              report.runtimes[rt.name] = w.version
              cases.append(ModelCase(row: row, worker: w))
            } catch {
              row.error = error.message
              cases.append(ModelCase(row: row))
            }
            tick("\(where_): loaded \(v.id) on \(rt.name)")
          }
        }
        crossCheck(&cases, o)
        // Rounds, interleaved.
        var interrupted = false
        rounds: for r in 0..<o.rounds {
          for j in 0..<cases.count {
            if stop() {
              interrupted = true
              break rounds
            }
            let i = (j + r) % cases.count
            if cases[i].row.error != nil { continue }
            do {
              let times = try cases[i].time(o.repeat, warmup: o.warmup)
              cases[i].times.append(times)
            } catch {
              cases[i].row.error = error.message
            }
            tick("\(where_): \(cases[i].row.variant) \(cases[i].row.runtime == "sparrow" ? cases[i].row.format : cases[i].row.runtime), round \(r + 1)/\(o.rounds)")
          }
        }
        report.rows += finish(cases)
        for c in cases { c.worker?.close() }
        if interrupted { break outer }
      }
    }
    report.interrupted = stop()
    report.loadAverageAfter = MachineInfo.loadAverage()
    report.seconds = (elapsed() * 10).rounded() / 10
    return report
  }

  // MARK: - pieces

  static func baseRow(_ v: ModelVariant, runtime: String, format: String, threads: Int, block: Int) -> ModelBenchRow {
    ModelBenchRow(
      variant: v.id, method: v.method, sparsity: v.sparsity, weightZeroFraction: v.weightZeroFraction,
      runtime: runtime, format: format, threads: threads, block: block)
  }

  /// Rows from a block's timings: medians, spreads, and speedups against the same runtime's
  /// baseline in the block. Cases with no finished round are dropped (an interrupted block).
  static func finish(_ cases: [ModelCase]) -> [ModelBenchRow] {
    var rows: [ModelBenchRow] = []
    let baseline = Dictionary(
      cases.filter { $0.row.method == .none && ($0.row.format == "auto" || $0.row.format == "-") }.map {
        ($0.row.runtime, $0)
      }, uniquingKeysWith: { a, _ in a })
    for c in cases {
      var row = c.row
      if c.times.isEmpty {
        if row.error != nil { rows.append(row) }
        continue
      }
      let stats = LatencyStats(seconds: c.times.flatMap { $0 })
      row.latency = stats
      row.roundMediansMs = c.times.map { LatencyStats(seconds: $0).medianMs }
      if let b = baseline[row.runtime], !b.times.isEmpty {
        let bs = LatencyStats(seconds: b.times.flatMap { $0 })
        row.baselineMs = bs.medianMs
        if stats.medianMs > 0 { row.speedup = round6(bs.medianMs / stats.medianMs) }
        let n = min(b.times.count, c.times.count)
        let ratios = (0..<n).compactMap { i -> Double? in
          let d = LatencyStats(seconds: c.times[i]).medianMs
          return d > 0 ? LatencyStats(seconds: b.times[i]).medianMs / d : nil
        }
        row.speedupRoundMin = ratios.min().map(round6)
        row.speedupRoundMax = ratios.max().map(round6)
      }
      rows.append(row)
    }
    return rows
  }

  /// Sparrow's output 0 (format auto) against ONNX Runtime's on the same file.
  static func crossCheck(_ cases: inout [ModelCase], _ o: ModelBenchOptions) {
    let ort = cases.filter { $0.row.runtime == "onnxruntime" && $0.worker != nil }
    guard !ort.isEmpty else { return }
    let tmp = (o.cacheDir as NSString).appendingPathComponent("ort-output.npy")
    for w in ort {
      guard (try? w.worker!.save(tmp)) != nil,
        let ref = try? NPY.read(contentsOf: URL(fileURLWithPath: tmp))
      else { continue }
      for i in cases.indices where cases[i].row.runtime == "sparrow" && cases[i].row.variant == w.row.variant {
        guard let sc = cases[i].sparrow, let first = sc.outputNames.first, let got = sc.output[first] else { continue }
        cases[i].row.vsOnnxRuntime = Deviation.between(["y": got], ["y": ref])
      }
    }
    try? FileManager.default.removeItem(atPath: tmp)
  }

  static func makeFeeds(_ file: String, _ o: ModelBenchOptions, _ report: inout ModelBenchReport) throws(BenchError)
    -> [String: Tensor]
  {
    var shapes = o.shapes
    for (n, t) in o.inputs where shapes[n] == nil { shapes[n] = t.shape }
    let plan: Plan
    do {
      plan = try Model(contentsOf: URL(fileURLWithPath: file), options: PlanOptions(threads: 1, format: .fixed(.dense)))
        .plan(shapes: shapes, values: o.inputs)
    } catch {
      throw BenchError("cannot plan \(o.model): \(error.message)")
    }
    for name in o.inputs.keys where !plan.inputs.contains(where: { $0.name == name }) {
      throw BenchError("the model has no input '\(name)' (inputs: \(plan.inputs.map(\.name).joined(separator: ", ")))")
    }
    var feeds: [String: Tensor] = [:]
    var rng = SeededRandom(seed: o.seed)
    for (name, type) in plan.inputs {
      if let t = o.inputs[name] {
        feeds[name] = t
        report.inputSources[name] = o.inputSources[name] ?? "given"
      } else {
        guard type.dtype == .float32 else { throw BenchError("input '\(name)' is \(type.dtype): give it with --input") }
        do {
          feeds[name] = try Tensor(shape: type.shape, floats: (0..<type.count).map { _ in rng.nextSignedFloat() })
        } catch {
          throw BenchError("input '\(name)': \(error.message)")
        }
        report.inputSources[name] = "seeded uniform random in [-1, 1), seed \(o.seed)"
      }
      report.inputShapes[name] = type.shape
    }
    return feeds
  }

  /// Top-1 accuracy of output 0 (argmax over its last axis) on the eval set, Sparrow, format auto.
  static func evaluate(_ file: String, _ o: ModelBenchOptions) throws(BenchError) -> Double {
    guard let labels = o.evalLabels else { return 0 }
    do {
      let m = try Model(contentsOf: URL(fileURLWithPath: file), options: PlanOptions(threads: o.threads.max()))
      let out = try m.run(o.evalInputs)
      let plan = try m.plan(shapes: o.evalInputs.mapValues(\.shape), values: o.evalInputs)
      guard let name = plan.outputs.first?.name, let y = out[name], y.dtype == .float32, let classes = y.shape.last,
        classes > 0, y.count == labels.count * classes
      else { throw BenchError("\(file): output 0 is not [images, classes]") }
      let f = y.floats
      var right = 0
      for i in 0..<labels.count {
        let row = f[(i * classes)..<((i + 1) * classes)]
        if let best = row.indices.max(by: { row[$0] < row[$1] }), best - i * classes == labels[i] { right += 1 }
      }
      return round6(Double(right) / Double(labels.count))
    } catch let e as BenchError {
      throw e
    } catch {
      throw BenchError("accuracy of \(file): \(error)")
    }
  }

  static func runnerLog(_ o: ModelBenchOptions) -> FileHandle? {
    guard !o.runtimes.isEmpty else { return nil }
    let path = (o.cacheDir as NSString).appendingPathComponent("runners.log")
    _ = FileManager.default.createFile(atPath: path, contents: nil)
    return FileHandle(forWritingAtPath: path)
  }

  static func sha256(_ path: String) -> String {
    let out = MachineInfo.run("/usr/bin/env", ["sha256sum", path], in: nil) ?? ""
    return String(out.split(separator: " ").first ?? "unknown")
  }

  static func pct(_ s: Double) -> String { "\(Int((s * 100).rounded()))%" }
  static func sanitize(_ s: String) -> String {
    String(s.map { c in c.isASCII && (c.isLetter || c.isNumber || c == "." || c == "_" || c == "-") ? c : "_" })
  }
}

/// One Sparrow case: a plan of a variant file in one configuration, with its session.
final class SparrowCase {
  let session: Session
  let feeds: [String: Tensor]
  let output: [String: Tensor]
  let outputNames: [String]
  let layerFormats: String

  init(file: String, config c: RunConfig, shapes: [String: [Int]], feeds: [String: Tensor]) throws(BenchError) {
    let policy: FormatPolicy
    if c.format == "auto" {
      policy = .auto
    } else if let k = WeightFormat.Kind(rawValue: c.format) {
      policy = .fixed(k)
    } else {
      throw BenchError("unknown format \(c.format)")
    }
    do {
      let model = try Model(contentsOf: URL(fileURLWithPath: file), options: PlanOptions(threads: c.threads, format: policy))
      let plan = try model.plan(shapes: shapes, values: feeds)
      session = Session(plan: plan)
      self.feeds = feeds
      output = try session.run(feeds)
      outputNames = plan.outputs.map(\.name)
      var counts: [String: Int] = [:]
      for l in plan.layers { counts[l.format, default: 0] += 1 }
      layerFormats = counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        .map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    } catch let e as ModelError {
      throw BenchError(e.message)
    } catch {
      throw BenchError("\(error)")
    }
  }

  func time(_ n: Int, warmup: Int) throws(BenchError) -> [Double] {
    do {
      for _ in 0..<warmup { _ = try session.run(feeds) }
      var out: [Double] = []
      out.reserveCapacity(n)
      for _ in 0..<n {
        let t0 = DispatchTime.now().uptimeNanoseconds
        _ = try session.run(feeds)
        out.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
      }
      return out
    } catch {
      throw BenchError(error.message)
    }
  }
}

/// A case of a block: a Sparrow plan or another runtime's warm session, and its timings per round.
struct ModelCase {
  var row: ModelBenchRow
  var sparrow: SparrowCase? = nil
  var worker: RuntimeWorker? = nil
  var times: [[Double]] = []

  func time(_ n: Int, warmup: Int) throws(BenchError) -> [Double] {
    if let s = sparrow { return try s.time(n, warmup: warmup) }
    if let w = worker { return try w.time(n, warmup: warmup) }
    return []
  }
}

extension SeededRandom {
  /// Uniform in [-1, 1), as `sparrow run` feeds inputs not given (same generator and seed).
  mutating func nextSignedFloat() -> Float { Float(next() >> 40) / Float(1 << 24) * 2 - 1 }
}
