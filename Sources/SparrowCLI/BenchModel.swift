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
  @Option(
    help:
      "Pruning methods: none, magnitude, nm (2:4), block, stripe, channel, channel-shrunk, and with --calibration wanda, sparsegpt, channel-taylor (shrunk) (comma-separated)."
  )
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
  @Option(
    help:
      "NAME=FILE.npy (repeatable), as sparrow prune's: the inputs the calibrated methods (wanda, sparsegpt, channel-taylor) run through the model."
  )
  var calibration: [String] = []
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
    var r = ModelBenchRequest()
    r.model = model
    r.inputs = inputs
    r.shapes = shapes
    r.methods = methods
    r.sparsity = sparsity
    r.formats = formats
    r.threads = threads
    r.rounds = rounds
    r.repeat = self.repeat
    r.warmup = warmup
    r.block = block
    r.channelMethod = channelMethod
    r.runtimes = runtimes
    r.eval = eval
    r.labels = labels
    r.knownAccuracy = knownAccuracy
    r.cacheDir = cacheDir
    r.seed = seed
    r.full = full
    r.quick = quick
    r.calibration = calibration
    let (o, notes) = try r.options(base: base)
    let modelPath = o.model
    let stem = ((modelPath as NSString).lastPathComponent as NSString).deletingPathExtension

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

  private func relative(_ path: String, _ base: String) -> String { ModelBenchRequest.relative(path, base) }

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
