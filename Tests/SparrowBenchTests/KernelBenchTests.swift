import Foundation
import Sparrow
import SparrowBench
import Testing

@Suite struct KernelBenchTests {
  static func quickOptions() throws -> KernelBenchOptions {
    let shapes = try ShapeList.parse("16 40 36 3  # tiny 3x3\n8 1 20  # tiny fc", source: "tiny.txt")
    var o = KernelBenchOptions(shapes: shapes)
    o.makeQuick()
    o.sparsities = [0.5, 0.9]
    o.blocks = [BlockShape(rows: 4, cols: 1), BlockShape(rows: 1, cols: 4)]
    o.threads = [1, 2]
    return o
  }

  @Test func quickRunHasEveryRow() throws {
    let o = try Self.quickOptions()
    let report = try KernelBench.run(o, machine: MachineInfo.current())
    let backends = kernelsHaveOpenMP ? ["serial", "dispatch", "openmp"] : ["serial", "dispatch"]
    // Per shape: csr x 2, 2:4 x 1 (0.5 only), bsr x 2 blocks x 2, channel x 2, packed dense x 1
    // (the dense matrix, at no sparsity) = 10 cases.
    #expect(report.rows.count == 2 * 10 * backends.count)
    for shape in ["16x40x36", "8x1x20"] {
      let rows = report.rows.filter { $0.shapeName == shape }
      #expect(Set(rows.map(\.format)) == ["csr", "2:4", "bsr4x1", "bsr1x4", "channel", "packed"])
      #expect(rows.filter { $0.format == "2:4" }.allSatisfy { $0.sparsity == 0.5 })
      #expect(rows.filter { $0.format == "packed" }.allSatisfy { $0.sparsity == 0 && $0.nnz == $0.m * $0.k })
      #expect(Set(rows.map(\.backend)) == Set(backends))
    }
    for r in report.rows {
      #expect(r.error == nil, "\(r.shapeName) \(r.format): \(r.error ?? "")")
      #expect(r.check == "ok", "\(r.shapeName) \(r.format) \(r.sparsity) \(r.backend): \(r.check)")
      #expect(!r.kernel.isEmpty)
      #expect(r.packedBytes > 0 && r.densePackedBytes == r.m * r.k * 4)
      #expect(r.formatTime?.runs == 2 && r.denseTime?.runs == 2)
      #expect(r.nnz == Int(((1 - r.actualSparsity) * Double(r.m * r.k)).rounded()))
      #expect(r.list == "tiny")
    }
    // Summary: one line per format x sparsity x threads x backend, over both shapes.
    #expect(report.summary.count == 10 * backends.count)
    #expect(report.summary.allSatisfy { $0.shapes == 2 && $0.weightedSpeedup > 0 })
  }

  /// `--kernels all` runs every kernel of the library's list that can run here: a kernel
  /// cannot be added to the list without being benchmarked.
  @Test func listedKernelsAreAllBenchmarked() throws {
    var o = try Self.quickOptions()
    o.kernels = .listed
    o.sparsities = [0.5]
    o.threads = [1]
    // Every block shape a listed kernel asks for, and a generic one.
    var blocks = [BlockShape(rows: 3, cols: 2)]
    for k in MicroKernel.all {
      if let r = k.blockRows, let c = k.blockCols, !blocks.contains(BlockShape(rows: r, cols: c)) {
        blocks.append(BlockShape(rows: r, cols: c))
      }
    }
    o.blocks = blocks
    let report = try KernelBench.run(o, machine: MachineInfo.current())
    for r in report.rows {
      #expect(r.error == nil && r.check == "ok", "\(r.shapeName) \(r.format) \(r.kernel): \(r.error ?? r.check)")
    }
    let ran = Set(report.rows.map(\.kernel)).union(report.rows.map(\.denseKernel))
    for k in MicroKernel.all where k.runnable {
      #expect(ran.contains(k.name), "listed kernel \(k.name) was not benchmarked")
    }
    #expect(report.settings.kernels == "all")
    #expect(report.summary.allSatisfy { $0.kernel != nil })
  }

  /// Every depthwise row kernel of the list that runs here is timed and matches the scalar one.
  @Test func depthwiseKernelsAreAllBenchmarked() throws {
    var o = try Self.quickOptions()
    o.shapes = try ShapeList.parse("8 64 9 1  # 8x8 3x3\n3 25 25 1  # 5x5 5x5\n4 10 9  # not square", source: "dw.txt")
    let rows = KernelBench.runDepthwise(o.shapes, options: o)
    let runnable = DepthwiseKernel.microkernels.filter(\.runnable).map(\.name)
    #expect(rows.count == 2 * runnable.count + 1)
    #expect(rows.filter { $0.error != nil }.count == 1)
    for r in rows where r.error == nil {
      #expect(r.check == "ok" && r.time?.runs == 2, "\(r.channels)x\(r.pixels)x\(r.taps) \(r.kernel): \(r.check)")
    }
    #expect(Set(rows.map(\.kernel)).isSuperset(of: runnable))
    #expect(KernelBench.depthwiseMarkdown(rows).contains("| dw | 8 | 64 | 9 |"))
  }

  @Test func reportRendersAndRoundTrips() throws {
    var o = try Self.quickOptions()
    o.shapes = [o.shapes[1]]
    o.threads = [1]
    o.formats = [.csr, .channel]
    let report = try KernelBench.run(o, machine: MachineInfo.current())
    #expect(report.rows.count == 4)
    let md = report.markdown()
    #expect(md.contains("| 8x1x20 | 1 | csr | 0.5 | 1 | serial |"))
    #expect(md.contains("## Summary"))
    let back = try JSONDecoder().decode(KernelBenchReport.self, from: try report.json())
    #expect(back == report)
  }

  @Test func badSettingsAreErrors() throws {
    var o = try Self.quickOptions()
    o.sparsities = [1.5]
    #expect(throws: BenchError.self) { try o.validate() }
    o = try Self.quickOptions()
    o.threads = [0]
    #expect(throws: BenchError.self) { try o.validate() }
    o = try Self.quickOptions()
    o.formats = [.nm]
    o.sparsities = [0.9]
    #expect(throws: BenchError.self) { try KernelBench.run(o, machine: MachineInfo.current()) }
    #expect(throws: BenchError.self) { try BlockShape(parsing: "4by1") }
    #expect(try BlockShape(parsing: "8x1") == BlockShape(rows: 8, cols: 1))
  }

  @Test func machineIdIsASlug() {
    let id = MachineInfo.slug("AMD EPYC 7B13 64-Core Processor-2c-avx2")
    #expect(id == "amd-epyc-7b13-64-2c-avx2")
    #expect(MachineInfo.slug("Intel(R) Xeon(R) CPU @ 2.20GHz-4c-avx512f") == "intel-xeon-4c-avx512f")
    let m = MachineInfo.current()
    #expect(!m.id.isEmpty && m.id.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "-" })
  }
}
