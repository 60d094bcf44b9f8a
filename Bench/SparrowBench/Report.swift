import Foundation
import Sparrow

/// Timings of one run set: median and spread, in milliseconds.
public struct TimingStats: Sendable, Codable, Equatable {
  public var medianMs: Double, p10Ms: Double, p90Ms: Double, minMs: Double, maxMs: Double
  public var runs: Int

  public init(seconds: [Double]) {
    // Whole nanoseconds, in ms: JSON then prints 3.150288, not 3.1502879999999998.
    let s = seconds.sorted().map { ($0 * 1e9).rounded() / 1e6 }
    func at(_ q: Double) -> Double { s.isEmpty ? 0 : s[Int((q * Double(s.count - 1)).rounded())] }
    let median: Double
    if s.isEmpty {
      median = 0
    } else if s.count % 2 == 1 {
      median = s[s.count / 2]
    } else {
      median = ((s[s.count / 2 - 1] + s[s.count / 2]) * 5e5).rounded() / 1e6
    }
    medianMs = median
    p10Ms = at(0.1)
    p90Ms = at(0.9)
    minMs = s.first ?? 0
    maxMs = s.last ?? 0
    runs = s.count
  }
}

/// One measured (shape, format, sparsity, threads, backend) against dense on the same shape.
public struct KernelBenchRow: Sendable, Codable, Equatable {
  public var list: String
  public var layer: String
  public var m: Int, n: Int, k: Int, count: Int
  /// `csr`, `nm`, `bsr`, `channel`.
  public var family: String
  /// The packed format: `csr`, `2:4`, `bsr4x1`, `channel`.
  public var format: String
  public var sparsity: Double
  /// The zero fraction of the weights actually generated.
  public var actualSparsity: Double
  public var nnz: Int
  public var storedValues: Int = 0
  public var threads: Int = 1
  /// `serial` (one thread), `dispatch` or `openmp`.
  public var backend: String = "serial"
  public var kernel: String = ""
  public var denseKernel: String = ""
  public var packedBytes: Int = 0
  public var densePackedBytes: Int = 0
  public var formatTime: TimingStats?
  public var denseTime: TimingStats?
  /// 2·nnz·N / t (nonzeros only).
  public var effectiveGflops: Double = 0
  /// 2·M·N·K / t: what dense would need to reach to match.
  public var denseEquivalentGflops: Double = 0
  /// 2·M·N·K / t_dense.
  public var denseGflops: Double = 0
  /// median t_dense / median t_format.
  public var speedup: Double = 0
  /// "ok", "FAIL ..." (format's output against dense's) or "-" when not checked.
  public var check: String = "-"
  public var error: String?

  init(shape: LayerShape, case c: BenchCase, nnz: Int) {
    list = shape.list
    layer = shape.label
    m = shape.m
    n = shape.n
    k = shape.k
    count = shape.count
    family = c.family.rawValue
    format = c.format.description
    sparsity = c.sparsity
    actualSparsity = round6(1 - Double(nnz) / Double(shape.m * shape.k))
    self.nnz = nnz
  }

  mutating func fill(dense: [Double], format: [Double]) {
    let d = TimingStats(seconds: dense), f = TimingStats(seconds: format)
    denseTime = d
    formatTime = f
    let flops = 2 * Double(m) * Double(n) * Double(k)
    if f.medianMs > 0 {
      effectiveGflops = round6(2 * Double(nnz) * Double(n) / (f.medianMs * 1e6))
      denseEquivalentGflops = round6(flops / (f.medianMs * 1e6))
      speedup = round6(d.medianMs / f.medianMs)
    }
    if d.medianMs > 0 { denseGflops = round6(flops / (d.medianMs * 1e6)) }
  }

  public var shapeName: String { "\(m)x\(n)x\(k)" }
}

/// Per shape list, format, kernel, sparsity, threads and backend: how the format does over the list.
public struct KernelBenchSummary: Sendable, Codable, Equatable {
  public var list: String
  public var format: String
  /// The kernel the rows ran (nil in reports made before it was recorded).
  public var kernel: String?
  public var sparsity: Double
  public var threads: Int
  public var backend: String
  public var shapes: Int
  /// Σ count·t_dense / Σ count·t_format over the list's shapes (median times): the speedup of
  /// running every layer of the list, each `count` times, back to back. Each shape weighs in
  /// with its time, i.e. about its dense FLOPs times its count.
  public var weightedSpeedup: Double
  public var minSpeedup: Double
  public var maxSpeedup: Double
}

/// The settings a report was made with.
public struct KernelBenchSettings: Sendable, Codable, Equatable {
  public var sparsities: [Double]
  public var formats: [String]
  public var blocks: [String]
  public var threads: [Int]
  public var minTime: Double
  public var minRuns: Int
  public var maxRuns: Int
  public var warmupRuns: Int
  public var seed: UInt64
  public var lists: [String]
  /// `auto` or `all` (KernelSelection); nil in reports made before it was recorded.
  public var kernels: String?

  init(_ o: KernelBenchOptions) {
    kernels = o.kernels.rawValue
    sparsities = o.sparsities
    formats = o.formats.map(\.rawValue)
    blocks = o.blocks.map(\.description)
    threads = o.threads
    minTime = o.minTime
    minRuns = o.minRuns
    maxRuns = o.maxRuns
    warmupRuns = o.warmupRuns
    seed = o.seed
    var seen: [String] = []
    for s in o.shapes where !seen.contains(s.list) { seen.append(s.list) }
    lists = seen
  }
}

/// Everything one `sparrow bench kernels` run measured.
public struct KernelBenchReport: Sendable, Codable, Equatable {
  public var machine: MachineInfo
  public var settings: KernelBenchSettings
  public var rows: [KernelBenchRow]
  public var summary: [KernelBenchSummary]

  init(machine: MachineInfo, settings: KernelBenchSettings, rows: [KernelBenchRow]) {
    self.machine = machine
    self.settings = settings
    self.rows = rows
    summary = Self.summarize(rows)
  }

  /// Groups rows by (list, format, kernel, sparsity, threads, backend), in first-seen order.
  static func summarize(_ rows: [KernelBenchRow]) -> [KernelBenchSummary] {
    struct Key: Hashable {
      var list: String, format: String, kernel: String, sparsity: Double, threads: Int, backend: String
    }
    var order: [Key] = []
    var groups: [Key: [KernelBenchRow]] = [:]
    for r in rows where r.error == nil && r.formatTime != nil {
      let key = Key(
        list: r.list, format: r.format, kernel: r.kernel, sparsity: r.sparsity, threads: r.threads, backend: r.backend)
      if groups[key] == nil { order.append(key) }
      groups[key, default: []].append(r)
    }
    return order.map { key in
      let g = groups[key]!
      let dense = g.reduce(0.0) { $0 + Double($1.count) * ($1.denseTime?.medianMs ?? 0) }
      let fmt = g.reduce(0.0) { $0 + Double($1.count) * ($1.formatTime?.medianMs ?? 0) }
      let speedups = g.map(\.speedup)
      return KernelBenchSummary(
        list: key.list, format: key.format, kernel: key.kernel, sparsity: key.sparsity, threads: key.threads, backend: key.backend,
        shapes: g.count, weightedSpeedup: fmt > 0 ? round6(dense / fmt) : 0, minSpeedup: speedups.min() ?? 0,
        maxSpeedup: speedups.max() ?? 0)
    }
  }

  /// Pretty-printed JSON with sorted keys (diffs well when committed).
  public func json() throws -> Data {
    let e = JSONEncoder()
    e.outputFormatting = [.prettyPrinted, .sortedKeys]
    return try e.encode(self)
  }
}

/// Six decimals: enough for any timing here, and short in JSON.
func round6(_ x: Double) -> Double { (x * 1e6).rounded() / 1e6 }
