import Foundation
import Sparrow
import SparrowBench
import Testing

/// `sparrow bench model`'s matrix on a tiny committed model (Models/ops/cnn_small.onnx: two 3x3
/// convolutions and a Gemm), quick timing, no other runtimes: seconds.
@Suite struct ModelBenchTests {
  static func options(_ tmp: String) throws -> ModelBenchOptions {
    let root = try #require(ShapeList.repoRoot())
    var o = ModelBenchOptions(model: root + "/Models/ops/cnn_small.onnx", cacheDir: tmp)
    o.shapes = ["X": [2, 3, 16, 16]]
    o.sparsities = [0.5, 0.9]
    o.threads = [1]
    o.makeQuick()
    return o
  }

  static func tempDir() throws -> String {
    let dir = NSTemporaryDirectory() + "sparrow-bench-model-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
  }

  @Test func matrixHasTheExpectedRows() throws {
    let tmp = try Self.tempDir()
    defer { try? FileManager.default.removeItem(atPath: tmp) }
    let o = try Self.options(tmp)
    let report = try ModelBench.run(o, machine: MachineInfo.current())
    #expect(!report.interrupted)
    // Variants: dense, then per sparsity magnitude, block, stripe, channel, shrunk; 2:4 once.
    #expect(
      report.variants.map(\.id).sorted()
        == [
          "block4x1-50", "block4x1-90", "chl1-50", "chl1-50-shrunk", "chl1-90", "chl1-90-shrunk", "dense", "mag50",
          "mag90", "nm24", "stripe50", "stripe90",
        ])
    for v in report.variants { #expect(FileManager.default.fileExists(atPath: v.file), "\(v.id) written") }
    // Per block (50%, 90%): dense auto + magnitude 3 + block 4 + stripe 3 + channel 3 + shrunk 1
    // (+ 2:4's 4 at 50%).
    #expect(report.rows.count == 19 + 15)
    #expect(Set(report.rows.filter { $0.variant == "stripe50" }.map(\.format)) == ["auto", "dense", "csr"])
    #expect(Set(report.rows.filter { $0.variant == "nm24" }.map(\.format)) == ["auto", "dense", "nm", "csr"])
    #expect(Set(report.rows.filter { $0.variant == "mag90" }.map(\.format)) == ["auto", "dense", "csr"])
    #expect(Set(report.rows.filter { $0.variant == "chl1-50-shrunk" }.map(\.format)) == ["auto"])
    #expect(Set(report.rows.map(\.runtime)) == ["sparrow"])
    for r in report.rows {
      #expect(r.error == nil, "\(r.variant) \(r.format): \(r.error ?? "")")
      #expect(r.latency?.runs == 1)
      #expect((r.speedup ?? 0) > 0)
      #expect(r.deviation != nil)
    }
    let dense = try #require(report.rows.first { $0.variant == "dense" })
    #expect(dense.speedup == 1 && dense.deviation?.maxAbs == 0)
    // Pruned models move the output; the shrunk model computes what the in-place one does.
    let inPlace = try #require(report.rows.first { $0.variant == "chl1-50" && $0.format == "auto" })
    let shrunk = try #require(report.rows.first { $0.variant == "chl1-50-shrunk" })
    #expect((inPlace.deviation?.maxAbs ?? 0) > 0)
    #expect(abs((inPlace.deviation?.maxAbs ?? 0) - (shrunk.deviation?.maxAbs ?? -1)) < 1e-4)
    #expect(report.variants.first { $0.id == "mag90" }.map { $0.weightZeroFraction > 0.6 } == true)

    // Markdown and JSON carry every row; the JSON reads back equal.
    let md = report.markdown()
    #expect(md.contains("## Summary: specific versus universal speedup"))
    #expect(md.contains("| chl1-50-shrunk | universal |"))
    #expect(md.components(separatedBy: "\n| mag90 |").count - 1 == 1 + 3)  // the summary line and 3 rows
    let back = try ModelBenchReport.decode(try report.json())
    #expect(back == report)
  }

  @Test func calibratedMethodsHaveRowsWithSpeedAndDeviation() throws {
    let tmp = try Self.tempDir()
    defer { try? FileManager.default.removeItem(atPath: tmp) }
    let root = try #require(ShapeList.repoRoot())
    var o = try Self.options(tmp)
    o.methods = [.none, .wanda, .sparsegpt, .channelTaylor]
    o.sparsities = [0.5]
    o.formats = ["auto"]
    o.calibration = try CalibrationFiles.read(["X=" + root + "/Models/ops/cnn_small/input_0_X.npy"])
    let report = try ModelBench.run(o, machine: MachineInfo.current())
    #expect(report.variants.map(\.id).sorted() == ["chtaylor-50-shrunk", "dense", "sparsegpt50", "wanda50"])
    for id in ["wanda50", "sparsegpt50", "chtaylor-50-shrunk"] {
      let r = try #require(report.rows.first { $0.variant == id && $0.format == "auto" }, "\(id) has a row")
      #expect(r.error == nil, "\(id): \(r.error ?? "")")
      #expect((r.speedup ?? 0) > 0, "\(id) speedup")
      #expect((r.deviation?.maxAbs ?? 0) > 0, "\(id) moves the output")
    }
    #expect(report.rows.first { $0.variant == "chtaylor-50-shrunk" }?.method.speedupKind == "universal")
    #expect(report.variants.first { $0.id == "wanda50" }.map { $0.weightZeroFraction > 0.3 } == true)
  }

  @Test func interruptKeepsFinishedRows() throws {
    let tmp = try Self.tempDir()
    defer { try? FileManager.default.removeItem(atPath: tmp) }
    var o = try Self.options(tmp)
    o.methods = [.none, .magnitude]
    o.sparsities = [0.5, 0.9]
    o.rounds = 2
    var steps = 0
    // 2 progress calls per variant (6), 4 plans, then 4 cases of round 1: stop as round 2 starts.
    let report = try ModelBench.run(
      o, machine: MachineInfo.current(), progress: { _ in steps += 1 }, stop: { steps >= 6 + 4 + 4 })
    #expect(report.interrupted)
    #expect(!report.rows.isEmpty)
    #expect(report.rows.allSatisfy { $0.sparsity == nil || $0.sparsity == 0.5 })
    #expect(report.rows.allSatisfy { $0.latency != nil && $0.roundMediansMs.count == 1 })
    #expect(report.markdown().contains("Interrupted (Ctrl-C)"))
  }

  @Test func badOptionsAreRefusedWithAMessage() throws {
    let tmp = try Self.tempDir()
    defer { try? FileManager.default.removeItem(atPath: tmp) }
    var o = try Self.options(tmp)
    o.sparsities = [1.5]
    #expect(throws: BenchError("sparsity 1.5 is outside (0, 1)")) { try ModelBench.run(o, machine: MachineInfo.current()) }
    o = try Self.options(tmp)
    o.formats = ["sparse"]
    #expect(throws: BenchError.self) { try ModelBench.run(o, machine: MachineInfo.current()) }
    o = try Self.options(tmp)
    o.shapes = [:]  // X has a symbolic batch
    #expect(throws: BenchError.self) { try ModelBench.run(o, machine: MachineInfo.current()) }
    o = try Self.options(tmp)
    o.model = tmp + "/missing.onnx"
    #expect(throws: BenchError.self) { try ModelBench.run(o, machine: MachineInfo.current()) }
    #expect(throws: BenchError.self) { try BenchMethod(parsing: "lottery") }
    // A calibrated method without calibration inputs: refused before any variant is made.
    o = try Self.options(tmp + "/calibrated")
    o.methods = [.none, .magnitude, .sparsegpt]
    #expect(throws: BenchError("method sparsegpt needs calibration inputs: --calibration NAME=FILE.npy")) {
      try ModelBench.run(o, machine: MachineInfo.current())
    }
    #expect(!FileManager.default.fileExists(atPath: tmp + "/calibrated"))
  }
}
