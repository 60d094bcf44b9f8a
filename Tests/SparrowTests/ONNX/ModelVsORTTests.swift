import Foundation
import Testing

@testable import Sparrow

/// Whole models against the outputs ONNX Runtime gave (Models/ops/*, saved beside each model):
/// `max|got - ref| <= 1e-4 · max|ref|` per output. Models whose ops are not all supported yet
/// are listed by `coverage`, not run: the supported-op list decides which models run.
@Suite struct ModelVsORTTests {
  static func supported(_ e: ModelFiles.Entry) -> Bool {
    guard let g = try? ONNXImporter.load(contentsOf: ModelFiles.root.appendingPathComponent("ops/\(e.file)")) else {
      return false
    }
    return g.nodes.allSatisfy(Planner.supports)
  }
  static let runnable = ModelFiles.ops.filter(supported)

  /// The op models that must run (`must-run-op-models.txt` beside this file, one name a line):
  /// a model that stops being runnable (an op lost, an importer regression) fails here instead
  /// of silently leaving the suite. Add the names a new op makes runnable.
  static let mustRun: [String] = {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("must-run-op-models.txt")
    guard let text = try? String(contentsOf: url, encoding: .utf8) else { return [] }
    return text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter {
      !$0.isEmpty && !$0.hasPrefix("#")
    }
  }()

  @Test func coverage() {
    let missing = ModelFiles.ops.filter { !Self.supported($0) }.map(\.name)
    print("op models runnable: \(Self.runnable.count)/\(ModelFiles.ops.count); not yet: \(missing.joined(separator: " "))")
    let runnable = Set(Self.runnable.map(\.name)), known = Set(ModelFiles.ops.map(\.name))
    #expect(Self.mustRun.count >= 100, "the must-run list is missing or short")
    for name in Self.mustRun {
      #expect(known.contains(name), "\(name) is listed as must-run but is not in Models/ops/manifest.json")
      #expect(runnable.contains(name), "\(name) is listed as must-run but no longer runs")
    }
    let unlisted = runnable.subtracting(Self.mustRun).sorted()
    if !unlisted.isEmpty { print("runnable, not yet in must-run-op-models.txt: \(unlisted.joined(separator: " "))") }
  }

  @Test(arguments: runnable) func matchesOnnxRuntime(_ e: ModelFiles.Entry) throws {
    try Self.check(e, threads: 1)
  }

  /// The same after BatchNorm folding and activation fusion, on 2 threads.
  @Test(arguments: runnable) func matchesOnnxRuntimeOptimized(_ e: ModelFiles.Entry) throws {
    try Self.check(e, threads: 2, optimize: true)
  }

  static func check(
    _ e: ModelFiles.Entry, threads: Int, format: FormatPolicy = .auto, optimize: Bool = false
  ) throws {
    let dir = ModelFiles.root.appendingPathComponent("ops")
    var g = try ONNXImporter.load(contentsOf: dir.appendingPathComponent(e.file))
    if optimize { g = try Passes.optimize(g) }
    var inputs: [String: Tensor] = [:]
    for i in e.inputs { inputs[i.name] = try NPY.read(contentsOf: dir.appendingPathComponent(i.file)) }
    // Inputs that set shapes (a Reshape's shape...) are planned on their values.
    let plan = try Planner.plan(
      g, shapes: inputs.mapValues(\.shape), values: inputs, options: PlanOptions(threads: threads, format: format))
    let got = try Session(plan: plan).run(inputs)
    for o in e.outputs {
      let ref = try NPY.read(contentsOf: dir.appendingPathComponent(o.file))
      guard let out = got[o.name] else {
        Issue.record("\(e.name): no output \(o.name)")
        continue
      }
      #expect(out.shape == ref.shape, "\(e.name) \(o.name): shape \(out.shape) vs \(ref.shape)")
      #expect(out.dtype == ref.dtype, "\(e.name) \(o.name): \(out.dtype) vs \(ref.dtype)")
      let a = out.floats, b = ref.floats
      guard a.count == b.count else { continue }
      let scale = b.map { abs($0) }.max() ?? 0
      var worst: Float = 0
      for i in a.indices { worst = max(worst, abs(a[i] - b[i])) }
      #expect(worst <= 1e-4 * max(scale, 1e-30) || (scale == 0 && worst == 0),
        "\(e.name) \(o.name): max|got-ref| = \(worst), bound \(1e-4 * scale)")
      if a.contains(where: \.isNaN) != b.contains(where: \.isNaN) { Issue.record("\(e.name) \(o.name): NaN mismatch") }
    }
  }
}
