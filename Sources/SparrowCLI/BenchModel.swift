import ArgumentParser
import Dispatch
import Foundation
import Sparrow
import SparrowBench
import Synchronization

/// `sparrow bench model` (and plain `sparrow bench`): which pruning pays, by how much, on this CPU.
struct BenchModelCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "model",
    abstract: "Speedup of pruned variants of a model: method x sparsity x format x threads, against other runtimes.",
    discussion: """
      Prunes the model with each method at each sparsity (Sparrow's pruner; variants written as ONNX \
      to --cache-dir so that ONNX Runtime and DeepSparse load the same files), then times each variant \
      in each applicable format on Sparrow and on the other runtimes found (.venv-test for ONNX \
      Runtime, .venv-deepsparse for DeepSparse; missing ones are skipped with a note), rounds \
      interleaved. Prints a Markdown report and writes <name>.md and <name>.json to --out \
      (default Bench/results/<machine id>/). With no model: the default model of Models/manifest.json \
      (the PP-OCRv4 detector) on its reference input. Ctrl-C stops and writes what finished.
      """)

  @Argument(help: "The ONNX model (default: Models/manifest.json's default model).") var model: String?
  @Option(name: .customLong("input"), help: "NAME=FILE.npy (repeatable). Inputs not given get seeded random data.")
  var inputs: [String] = []
  @Option(name: .customLong("shape"), help: "Pin a symbolic input shape: NAME=1x3x320x320 (repeatable).")
  var shapes: [String] = []
  @Option(help: "Pruning methods: none, magnitude, nm (2:4), block, channel, channel-shrunk (comma-separated).")
  var methods: String = "none,magnitude,nm,block,channel,channel-shrunk"
  @Option(help: "Sparsity levels (channel methods: fraction of filters), comma-separated.")
  var sparsity: String?
  @Option(help: "Formats: auto and forced kinds (dense, csr, nm, bsr, channel), each where the method has it.")
  var formats: String = "auto,dense,csr,nm,bsr,channel"
  @Option(help: "Thread counts, comma-separated (default: 1 and all cores).") var threads: String?
  @Option(help: "Interleaved rounds.") var rounds: Int?
  @Option(help: "Timed runs per case per round.") var `repeat`: Int?
  @Option(help: "Untimed runs per case per round.") var warmup: Int?
  @Option(help: "Block shape for --methods block (ROWSxCOLS).") var block: String = "4x1"
  @Option(help: "Channel method: channel-l1 or channel-fpgm.") var channelMethod: String = "channel-l1"
  @Option(help: "Other runtimes: onnxruntime, deepsparse, or none.") var runtimes: String = "onnxruntime,deepsparse"
  @Option(help: "Accuracy test set: NAME=IMAGES.npy (with --labels).") var eval: String?
  @Option(help: "Labels of the --eval images (.npy of integers).") var labels: String?
  @Option(help: "Fine-tuned accuracies to show by variant name (default: accuracy.json beside the model, if any).")
  var knownAccuracy: String?
  @Option(help: "Where pruned variants are written (default Bench/cache/<model name>).") var cacheDir: String?
  @Option(help: "Folder for the report (default Bench/results/<machine id>).") var out: String?
  @Option(help: "Report file name, without extension (default model-<model name>).") var name: String?
  @Option(help: "Seed for random inputs.") var seed: UInt64 = 1
  @Flag(help: "The full matrix: sparsity 0.5,0.7,0.8,0.9,0.95, 5 rounds of 10 runs (an hour or more on big models).")
  var full = false
  @Flag(help: "One round of one run (smoke tests; figures not meaningful); writes files only with --out.")
  var quick = false
  @Flag(name: .customLong("no-save"), help: "Print only; write no report files.") var noSave = false

  func run() throws {
    do {
      try body()
    } catch let e as BenchError {
      throw CommandError(e.message)
    }
  }

  private func body() throws {
    let root = ShapeList.repoRoot()
    let base = root ?? "."
    let (modelPath, defaultInputs) = try resolveModel(base)
    let stem = ((modelPath as NSString).lastPathComponent as NSString).deletingPathExtension
    var o = ModelBenchOptions(model: modelPath, cacheDir: cacheDir ?? "\(base)/Bench/cache/\(stem)")
    if full {
      o.sparsities = [0.5, 0.7, 0.8, 0.9, 0.95]
      o.rounds = 5
      o.repeat = 10
    }
    if quick { o.makeQuick() }
    if let s = sparsity { o.sparsities = try list(s, "sparsity") { Double($0) } }
    o.methods = try list(methods, "method") { try? BenchMethod(parsing: $0) }
    o.formats = try list(formats, "format") { $0 == "2:4" ? "nm" : $0 }
    if let t = threads { o.threads = try list(t, "thread count") { Int($0) } }
    o.threads = o.threads.reduce(into: []) { if !$0.contains($1) { $0.append($1) } }
    if let r = rounds { o.rounds = r }
    if let r = self.repeat { o.repeat = r }
    if let w = warmup { o.warmup = w }
    o.block = block
    guard let cm = PruneMethod(rawValue: channelMethod), cm.isChannel else {
      throw CommandError("--channel-method \(channelMethod): expected channel-l1 or channel-fpgm")
    }
    o.channelMethod = cm
    o.seed = seed
    o.shapes = try parsedShapes()
    for spec in inputs.isEmpty ? defaultInputs : inputs {
      let (n, path) = try pair(spec, "--input")
      o.inputs[n] = try readNPY(path)
      o.inputSources[n] = path
    }
    if let e = eval {
      let (n, path) = try pair(e, "--eval")
      o.evalInputs[n] = try readNPY(path)
    }
    if let l = labels {
      let t = try readNPY(l)
      o.evalLabels = t.int64s.map { Int($0) }
    }
    let known = knownAccuracy ?? ((modelPath as NSString).deletingLastPathComponent + "/accuracy.json")
    if FileManager.default.fileExists(atPath: known) {
      o.knownAccuracy = ModelBenchOptions.readKnownAccuracy(known)
      if !o.knownAccuracy.isEmpty { o.knownAccuracySource = relative(known, base) }
    } else if knownAccuracy != nil {
      throw CommandError("--known-accuracy \(known): no such file")
    }
    var notes: [String] = []
    let wanted = runtimes == "none" ? [] : try list(runtimes, "runtime") { ["onnxruntime", "deepsparse"].contains($0) ? $0 : nil }
    let found = ExternalRuntimeSpec.discover(root: base, wanted: wanted)
    o.runtimes = found.found
    notes += found.notes
    try o.validate()

    let machine = MachineInfo.current(repoRoot: root)
    note("machine \(machine.id), commit \(machine.gitCommit), load \(machine.loadAverage); model \(relative(modelPath, base))")
    for n in notes { note(n) }
    let stopFlag = Interrupt.install()
    let bar = ProgressBar()
    let report = try ModelBench.run(
      o, machine: machine, runtimeNotes: notes, progress: { bar.draw($0) }, stop: { stopFlag.isSet })
    bar.finish()
    if report.interrupted { note("interrupted: writing the \(report.rows.count) finished row(s)") }
    let md = report.markdown()
    print(md)
    if noSave || (quick && out == nil) { return }
    let dir = out ?? "\(base)/Bench/results/\(machine.id)"
    let file = name ?? "model-\(stem)"
    do {
      try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
      try Data(md.utf8).write(to: URL(fileURLWithPath: "\(dir)/\(file).md"))
      try report.json().write(to: URL(fileURLWithPath: "\(dir)/\(file).json"))
    } catch {
      throw CommandError("cannot write the report to \(dir): \(error)")
    }
    note("wrote \(dir)/\(file).md and .json")
  }

  /// The model and its default inputs (the manifest's reference input for the default model).
  private func resolveModel(_ base: String) throws -> (String, [String]) {
    if let m = model {
      guard FileManager.default.fileExists(atPath: m) else { throw CommandError("no such model file: \(m)") }
      return (m, [])
    }
    let manifest = "\(base)/Models/manifest.json"
    guard let data = FileManager.default.contents(atPath: manifest),
      let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
      let models = root["models"] as? [[String: Any]],
      let entry = models.first(where: { ($0["default"] as? Bool) == true }),
      let file = entry["file"] as? String
    else { throw CommandError("no model given and no default model in \(manifest)") }
    var inputs: [String] = []
    if let ref = entry["reference"] as? [String: Any], let cases = ref["cases"] as? [[String: Any]],
      let first = cases.first, let ins = first["inputs"] as? [[String: Any]]
    {
      for i in ins {
        if let n = i["name"] as? String, let f = i["file"] as? String { inputs.append("\(n)=\(base)/Models/\(f)") }
      }
    }
    return ("\(base)/Models/\(file)", inputs)
  }

  private func parsedShapes() throws -> [String: [Int]] {
    var out: [String: [Int]] = [:]
    for s in shapes {
      let (n, d) = try pair(s, "--shape")
      let dims = d.split(separator: "x").map { Int($0) }
      guard !dims.isEmpty, dims.allSatisfy({ ($0 ?? 0) > 0 }) else {
        throw CommandError("--shape \(s): dimensions must be positive integers joined by x")
      }
      out[n] = dims.map { $0! }
    }
    return out
  }

  private func pair(_ s: String, _ flag: String) throws -> (String, String) {
    guard let eq = s.firstIndex(of: "="), eq != s.startIndex else { throw CommandError("\(flag) \(s): expected NAME=VALUE") }
    return (String(s[..<eq]), String(s[s.index(after: eq)...]))
  }

  private func readNPY(_ path: String) throws -> Tensor {
    do { return try NPY.read(contentsOf: URL(fileURLWithPath: path)) } catch {
      throw CommandError("cannot read \(path): \(error)")
    }
  }

  private func list<T>(_ s: String, _ what: String, _ parse: (String) -> T?) throws -> [T] {
    try s.split(separator: ",").map { raw in
      let item = raw.trimmingCharacters(in: .whitespaces)
      guard let v = parse(item) else { throw CommandError("bad \(what) '\(item)' in '\(s)'") }
      return v
    }
  }

  private func relative(_ path: String, _ base: String) -> String {
    path.hasPrefix(base + "/") ? String(path.dropFirst(base.count + 1)) : path
  }

  private func note(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }
}

/// Ctrl-C (SIGINT) sets a flag the bench polls between runs; a second Ctrl-C quits at once.
final class Interrupt: Sendable {
  private let flag = Mutex(false)
  var isSet: Bool { flag.withLock { $0 } }

  nonisolated(unsafe) private static var source: (any DispatchSourceSignal)?

  static func install() -> Interrupt {
    let i = Interrupt()
    signal(SIGINT, SIG_IGN)
    signal(SIGPIPE, SIG_IGN)
    let s = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
    s.setEventHandler {
      if i.flag.withLock({ f in defer { f = true }; return f }) { _exit(130) }
      FileHandle.standardError.write(Data("\nCtrl-C: finishing the current case, then writing the report (again to quit now)\n".utf8))
    }
    s.resume()
    source = s
    return i
  }
}

/// A progress bar with the time left, on stderr: redrawn in place on a terminal, one line per
/// 5% (or per minute) otherwise.
final class ProgressBar {
  private let tty = isatty(2) == 1
  private var lastPercent = -5
  private var lastLine = Date.distantPast

  func draw(_ p: ModelBenchProgress) {
    let frac = p.total > 0 ? Double(p.done) / Double(p.total) : 0
    let percent = Int(frac * 100)
    let width = 24
    let filled = Int(frac * Double(width))
    let eta = p.eta.map { " ETA \(Self.clock($0))" } ?? ""
    let line = "[\(String(repeating: "#", count: filled))\(String(repeating: ".", count: width - filled))] "
      + "\(percent)%\(eta)  \(Self.clock(p.elapsed)) elapsed  \(p.what)"
    if tty {
      FileHandle.standardError.write(Data(("\r\u{1B}[K" + String(line.prefix(160))).utf8))
    } else if percent >= lastPercent + 5 || Date().timeIntervalSince(lastLine) > 60 {
      lastPercent = percent
      lastLine = Date()
      FileHandle.standardError.write(Data((line + "\n").utf8))
    }
  }

  func finish() { if tty { FileHandle.standardError.write(Data("\n".utf8)) } }

  static func clock(_ s: Double) -> String {
    let t = Int(s.rounded())
    return t >= 3600 ? "\(t / 3600)h\(String(format: "%02d", t % 3600 / 60))m" : t >= 60 ? "\(t / 60)m\(String(format: "%02d", t % 60))s" : "\(t)s"
  }
}
