import Foundation
import Testing

@testable import Sparrow

/// The format-timing cache: a second plan of the same weight reuses the first one's timings;
/// another thread count or other weights time again; the file survives processes and a corrupt
/// file is an empty cache.
@Suite struct FormatCacheTests {
  static func gemmGraph(_ w: [Float], rows: Int, cols: Int) throws -> Graph {
    Graph(
      inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(64), .fixed(cols)])],
      outputs: [ValueInfo(name: "y")],
      nodes: [Node(name: "fc", opType: "Gemm", inputs: ["x", "w"], outputs: ["y"], attributes: ["transB": .int(1)])],
      constants: ["w": try Tensor(shape: [rows, cols], floats: w)], opset: 13)
  }

  static func sparseWeights(seed: UInt64, count: Int) -> [Float] {
    var rng = SeededRNG(seed: seed)
    return (0..<count).map { _ in Float.random(in: 0..<1, using: &rng) < 0.85 ? 0 : rng.float() }
  }

  @Test func secondPlanUsesTheCache() throws {
    let cache = FormatCache(url: nil)
    let g = try Self.gemmGraph(Self.sparseWeights(seed: 1, count: 48 * 96), rows: 48, cols: 96)
    let first = try Planner.plan(g, options: PlanOptions(threads: 1, formatCache: cache)).layers[0]
    #expect(!first.measuredFromCache && first.measured.count > 1)
    let second = try Planner.plan(g, options: PlanOptions(threads: 1, formatCache: cache)).layers[0]
    #expect(second.measuredFromCache)
    #expect(second.format == first.format && second.measured == first.measured)
    let otherThreads = try Planner.plan(g, options: PlanOptions(threads: 2, formatCache: cache)).layers[0]
    #expect(!otherThreads.measuredFromCache)
    let g2 = try Self.gemmGraph(Self.sparseWeights(seed: 2, count: 48 * 96), rows: 48, cols: 96)
    #expect(!(try Planner.plan(g2, options: PlanOptions(threads: 1, formatCache: cache)).layers[0].measuredFromCache))
    #expect(!(try Planner.plan(g, options: PlanOptions(threads: 1, formatCache: nil)).layers[0].measuredFromCache))
  }

  @Test func fileRoundTripAndCorruptFile() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sparrow-fc-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: dir) }
    let url = dir.appendingPathComponent("sub/formats.json")
    let a = FormatCache(url: url)
    a.store("k1", .init(format: "csr", measured: ["csr": 1.5, "dense": 2]))
    a.flush()
    #expect(FormatCache(url: url).lookup("k1") == .init(format: "csr", measured: ["csr": 1.5, "dense": 2]))
    // Two writers: the second merges with what the first wrote.
    let b = FormatCache(url: url)
    b.store("k2", .init(format: "dense", measured: ["dense": 1]))
    b.flush()
    let c = FormatCache(url: url)
    #expect(c.lookup("k1") != nil && c.lookup("k2") != nil)
    try Data("{ not json".utf8).write(to: url)
    let d = FormatCache(url: url)
    #expect(d.lookup("k1") == nil)
    d.store("k3", .init(format: "csr", measured: [:]))
    d.flush()
    #expect(FormatCache(url: url).lookup("k3") != nil)
  }

  @Test func keyDependsOnEveryInput() {
    let w: [Float] = [0, 1, 0, 2]
    let base = FormatCache.key(weights: w, rows: 2, cols: 2, n: 8, kPerChannel: 1, candidates: [.dense, .csr], threads: 1)
    let variants = [
      FormatCache.key(weights: [0, 1, 0, 3], rows: 2, cols: 2, n: 8, kPerChannel: 1, candidates: [.dense, .csr], threads: 1),
      FormatCache.key(weights: w, rows: 1, cols: 4, n: 8, kPerChannel: 1, candidates: [.dense, .csr], threads: 1),
      FormatCache.key(weights: w, rows: 2, cols: 2, n: 9, kPerChannel: 1, candidates: [.dense, .csr], threads: 1),
      FormatCache.key(weights: w, rows: 2, cols: 2, n: 8, kPerChannel: 2, candidates: [.dense, .csr], threads: 1),
      FormatCache.key(weights: w, rows: 2, cols: 2, n: 8, kPerChannel: 1, candidates: [.dense], threads: 1),
      FormatCache.key(weights: w, rows: 2, cols: 2, n: 8, kPerChannel: 1, candidates: [.dense, .csr], threads: 2),
      FormatCache.key(
        weights: w, rows: 2, cols: 2, n: 8, kPerChannel: 1, candidates: [.dense, .csr], threads: 1, window: true),
    ]
    #expect(Set(variants + [base]).count == variants.count + 1)
  }
}
