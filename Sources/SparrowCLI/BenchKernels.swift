import ArgumentParser
import Foundation
import Sparrow
import SparrowBench

/// `sparrow bench kernels`: every sparse format against dense on real layer shapes.
struct BenchKernelsCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "kernels",
    abstract: "Kernel micro-benchmark: sparse formats against dense OpenBLAS on real layer shapes.",
    discussion: """
      For each shape, sparsity and format, builds seeded random weights with the format's pattern \
      (unstructured for csr, 2:4 for nm at 0.5 only, whole blocks for bsr, whole rows for channel), \
      and times SpMMRunner.run on it and on dense alternately. Prints a Markdown table to stdout \
      (progress to stderr) and writes kernels.md and kernels.json to --out \
      (default Bench/results/<machine id>/; with --quick only when --out is given).
      With --active, runs the active-channel benchmark instead: dense, 2:4, CSR 80/90%, BSR 4x1 80/90% \
      and 1x4 90%, each with seeded random lists keeping each fraction of the input channels \
      (k_per_channel from the layer's kernel size) and/or output rows, timed alternately against the \
      same matrix without lists, 1 thread; writes kernels-active.md and kernels-active.json.
      """)

  @Option(
    name: .long, parsing: .upToNextOption,
    help: "Shape lists (files, or names in Bench/shapes: resnet18, resnet50, mobilenetv1, mobilenetv2, fc).")
  var shapes: [String] = []

  @Option(help: "Sparsity levels, comma-separated.")
  var sparsity: String = "0.5,0.7,0.8,0.9,0.95"

  @Option(help: "Formats: csr, nm, bsr, channel, packed (Sparrow's own dense kernels on the dense matrix) (comma-separated).")
  var formats: String = "csr,nm,bsr,channel,packed"

  @Option(help: "BSR block shapes, comma-separated ROWSxCOLS.")
  var blocks: String = "4x1,8x1,1x4,4x4"

  @Option(help: "Kernels per case: auto (the dispatcher's choice) or all (every kernel of the list that fits and runs here, every depthwise row kernel on --depthwise-shapes and every row-wise kernel on --rowwise-shapes).")
  var kernels: String = "auto"

  @Option(
    name: .customLong("depthwise-shapes"), parsing: .upToNextOption,
    help: "Depthwise shape lists for --kernels all (default mobilenetv2-depthwise).")
  var depthwiseShapes: [String] = []

  @Option(
    name: .customLong("rowwise-shapes"), parsing: .upToNextOption,
    help: "Row-wise (softmax, GELU, LayerNorm) shape lists for --kernels all (default rowwise: rows, row length).")
  var rowwiseShapes: [String] = []

  @Option(help: "Thread counts; above 1 every available backend (dispatch, openmp) runs.")
  var threads: String = "1,2"

  @Option(name: .customLong("min-time"), help: "Seconds of (dense + format) timing per row, at least.")
  var minTime: Double?

  @Option(name: .customLong("min-runs"), help: "Timed pairs per row, at least.")
  var minRuns: Int?

  @Option(help: "Also write the JSON report to this file.")
  var json: String?

  @Option(help: "Folder for kernels.md and kernels.json (default Bench/results/<machine id>).")
  var out: String?

  @Option(help: "Seed for weights and activations.")
  var seed: UInt64 = 1

  @Option(help: "Force an ISA for the run: scalar, avx2, avx512, neon.")
  var isa: String?

  @Option(help: "Active-channel benchmark: kept fractions, comma-separated (e.g. 1,0.75,0.5,0.25).")
  var active: String?

  @Option(name: .customLong("active-on"), help: "Lists for --active: in, out, both (comma-separated).")
  var activeOn: String = "in,both"

  @Flag(help: "Tiny timing settings (smoke tests; numbers not meaningful).")
  var quick = false

  @Flag(name: .customLong("no-save"), help: "Write no files except --json.")
  var noSave = false

  func run() throws {
    do {
      try body()
    } catch let e as BenchError {
      throw CommandError(e.message)
    }
  }

  private func body() throws {
    let root = ShapeList.repoRoot()
    let shapesDir = root.map { $0 + "/Bench/shapes" } ?? "Bench/shapes"
    var shapeList: [LayerShape] = []
    for arg in shapes.isEmpty ? ["default"] : shapes {
      shapeList += try ShapeList.load(try ShapeList.resolve(arg, shapesDir: shapesDir))
    }
    if let fractions = active {
      try runActive(shapeList, fractions: fractions, root: root)
      return
    }
    var o = KernelBenchOptions(shapes: shapeList)
    if quick { o.makeQuick() }
    o.sparsities = try list(sparsity, "sparsity") { Double($0) }
    o.formats = try list(formats, "format") { BenchFormat(rawValue: $0 == "2:4" ? "nm" : $0) }
    o.blocks = try list(blocks, "block shape") { try? BlockShape(parsing: $0) }
    o.threads = try list(threads, "thread count") { Int($0) }
    guard let selection = KernelSelection(rawValue: kernels) else {
      throw CommandError("unknown --kernels '\(kernels)' (auto, all)")
    }
    o.kernels = selection
    if let t = minTime { o.minTime = t }
    if let r = minRuns {
      o.minRuns = r
      o.maxRuns = max(o.maxRuns, r)
    }
    o.seed = seed
    try o.validate()
    if let name = isa {
      guard let want = ISA(rawValue: name) else { throw CommandError("unknown ISA '\(name)' (scalar, avx2, avx512, neon)") }
      let got = ISA.force(want)
      if got != want { throw CommandError("this CPU cannot run ISA \(name)") }
    }

    let machine = MachineInfo.current(repoRoot: root)
    note("machine \(machine.id), ISA \(machine.isaActive), commit \(machine.gitCommit); \(shapeList.count) shapes")
    let report = try KernelBench.run(o, machine: machine) { note($0) }
    print(report.markdown())
    if selection == .listed {
      var dw: [LayerShape] = []
      for arg in depthwiseShapes.isEmpty ? ["mobilenetv2-depthwise"] : depthwiseShapes {
        dw += try ShapeList.load(try ShapeList.resolve(arg, shapesDir: shapesDir))
      }
      print("\n" + KernelBench.depthwiseMarkdown(KernelBench.runDepthwise(dw, options: o)))
      var rw: [LayerShape] = []
      for arg in rowwiseShapes.isEmpty ? ["rowwise"] : rowwiseShapes {
        rw += try ShapeList.load(try ShapeList.resolve(arg, shapesDir: shapesDir))
      }
      print("\n" + KernelBench.rowwiseMarkdown(KernelBench.runRowwise(rw, options: o)))
    }

    let data = try report.json()
    if let path = json {
      try write(data, to: path)
      note("wrote \(path)")
    }
    if noSave || (quick && out == nil) { return }
    let dir = out ?? ((root ?? ".") + "/Bench/results/\(machine.id)")
    do {
      try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    } catch {
      throw CommandError("cannot create output folder '\(dir)'")
    }
    try write(Data(report.markdown().utf8), to: dir + "/kernels.md")
    try write(data, to: dir + "/kernels.json")
    note("wrote \(dir)/kernels.md and kernels.json")
  }

  private func runActive(_ shapeList: [LayerShape], fractions: String, root: String?) throws {
    var o = ActiveBenchOptions(shapes: shapeList)
    if quick { o.makeQuick() }
    o.fractions = try list(fractions, "active fraction") { Double($0) }
    o.modes = try list(activeOn, "list mode") { ActiveListMode(rawValue: $0) }
    if let t = minTime { o.minTime = t }
    if let r = minRuns { o.minRuns = r }
    o.seed = seed
    let machine = MachineInfo.current(repoRoot: root)
    note("machine \(machine.id), ISA \(machine.isaActive), commit \(machine.gitCommit); \(shapeList.count) shapes")
    let report = try KernelBench.runActive(o, machine: machine) { note($0) }
    print(report.markdown())
    let enc = JSONEncoder()
    enc.outputFormatting = [.prettyPrinted, .sortedKeys]
    let data = try enc.encode(report)
    if let path = json { try write(data, to: path) }
    if noSave || (quick && out == nil) { return }
    let dir = out ?? ((root ?? ".") + "/Bench/results/\(machine.id)")
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    try write(Data(report.markdown().utf8), to: dir + "/kernels-active.md")
    try write(data, to: dir + "/kernels-active.json")
    note("wrote \(dir)/kernels-active.md and kernels-active.json")
  }

  private func list<T>(_ s: String, _ what: String, _ parse: (String) -> T?) throws -> [T] {
    try s.split(separator: ",").map { raw in
      let item = raw.trimmingCharacters(in: .whitespaces)
      guard let v = parse(item) else { throw CommandError("bad \(what) '\(item)' in '\(s)'") }
      return v
    }
  }

  private func write(_ data: Data, to path: String) throws {
    do {
      try data.write(to: URL(fileURLWithPath: path))
    } catch {
      throw CommandError("cannot write '\(path)'")
    }
  }

  private func note(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
  }
}

/// A one-line error for the user (ArgumentParser prints it after "Error: " and exits 1).
struct CommandError: Error, CustomStringConvertible {
  let description: String
  init(_ message: String) { description = message }
}
