import Dispatch
import Foundation
import Sparrow

/// Which active-channel lists the gate benchmark passes.
public enum ActiveListMode: String, Sendable, Codable, CaseIterable {
  /// Input channels only (`zero` and `topk` gates).
  case input = "in"
  /// Output rows only.
  case output = "out"
  /// Both at the same fraction (a learned gate: this conv's top-k outputs, the previous conv's as inputs).
  case both
}

/// `sparrow bench kernels --active ...`: each format with active-channel lists against the same
/// packed matrix without lists, on the same shape, timed alternately.
public struct ActiveBenchOptions: Sendable {
  public var shapes: [LayerShape]
  /// Kept fractions of channels (1 = a list naming every channel).
  public var fractions: [Double] = [1, 0.75, 0.5, 0.25]
  public var modes: [ActiveListMode] = [.input, .both]
  /// (format, sparsity) pairs; sparsity 0 runs dense (OpenBLAS).
  public var cases: [(WeightFormat, Double)] = ActiveBenchOptions.defaultCases
  public var minTime = 0.15
  public var minRuns = 5
  public var maxRuns = 10_000
  public var seed: UInt64 = 1

  public static let defaultCases: [(WeightFormat, Double)] = [
    (.dense, 0), (.nm(n: 2, m: 4), 0.5), (.csr, 0.8), (.csr, 0.9), (.bsr(rows: 4, cols: 1), 0.8),
    (.bsr(rows: 4, cols: 1), 0.9), (.bsr(rows: 1, cols: 4), 0.9),
  ]

  public init(shapes: [LayerShape]) { self.shapes = shapes }

  public mutating func makeQuick() {
    minTime = 0
    minRuns = 2
    maxRuns = 2
  }
}

/// One (shape, format, sparsity, mode, fraction) measurement.
public struct ActiveBenchRow: Sendable, Codable, Equatable {
  public var shape: String
  public var layer: String
  public var count: Int
  public var kPerChannel: Int
  public var format: String
  public var sparsity: Double
  public var kernel: String
  public var mode: String
  public var fraction: Double
  /// Median milliseconds without lists and with them, timed alternately.
  public var plainMs: Double
  public var listMs: Double
  public var runs: Int
  /// listMs / plainMs.
  public var ratio: Double { plainMs > 0 ? listMs / plainMs : 0 }
}

public struct ActiveBenchReport: Sendable, Codable {
  public var machine: MachineInfo
  public var loadAverageEnd: String
  public var rows: [ActiveBenchRow]

  /// Per (format, sparsity, mode, fraction): the model-weighted ratio Σ count·list / Σ count·plain.
  public func summary() -> [(format: String, sparsity: Double, mode: String, fraction: Double, ratio: Double)] {
    var order: [String] = []
    var acc: [String: (String, Double, String, Double, Double, Double)] = [:]
    for r in rows {
      let key = "\(r.format)|\(r.sparsity)|\(r.mode)|\(r.fraction)"
      if acc[key] == nil {
        order.append(key)
        acc[key] = (r.format, r.sparsity, r.mode, r.fraction, 0, 0)
      }
      acc[key]!.4 += Double(r.count) * r.plainMs
      acc[key]!.5 += Double(r.count) * r.listMs
    }
    return order.map { k in
      let a = acc[k]!
      return (a.0, a.1, a.2, a.3, a.4 > 0 ? a.5 / a.4 : 0)
    }
  }

  public func markdown() -> String {
    let m = machine
    var out = "# Active-channel lists: time against the same format without lists\n\n"
    out += "- CPU: \(m.cpuModel), \(m.cores) cores; flags: \(m.isaFlags.joined(separator: " "))\n"
    out += "- ISA active: \(m.isaActive); OpenMP: \(m.openMP ? "yes" : "no"); 1 thread\n"
    out += "- commit \(m.gitCommit); Swift \(m.swiftVersion); OpenBLAS \(m.openBLAS); \(m.os)\n"
    out += "- date \(m.date); load average at start \(m.loadAverage), at end \(loadAverageEnd)\n"
    out += "- each row: the packed matrix run without lists and with random (seeded) lists keeping the fraction R of "
    out += "the channels, alternately on the same X/Y; medians; ratio = list / no list (ideal: R for `in` and `out`, "
    out += "R² for `both`). `in`: input channels (k_per_channel from the layer's kernel size); `out`: output rows; "
    out += "`both`: both lists at R.\n\n"
    out += "## Summary (ResNet-18 convolutions weighted by layer count: Σ list time / Σ no-list time)\n\n"
    let modes = Array(Set(rows.map(\.mode))).sorted()
    let fractions = Array(Set(rows.map(\.fraction))).sorted(by: >)
    out += "| format | sparsity | mode | " + fractions.map { "R=\(fmt($0))" }.joined(separator: " | ") + " |\n"
    out += "|---|--:|---|" + fractions.map { _ in "--:" }.joined(separator: "|") + "|\n"
    let s = summary()
    var seen = Set<String>()
    for e in s {
      for mode in modes {
        let key = "\(e.format)|\(e.sparsity)|\(mode)"
        if seen.contains(key) { continue }
        let cells = fractions.map { f -> String in
          guard let x = s.first(where: { $0.format == e.format && $0.sparsity == e.sparsity && $0.mode == mode && $0.fraction == f })
          else { return "—" }
          return String(format: "%.2f", x.ratio)
        }
        if cells.allSatisfy({ $0 == "—" }) { continue }
        seen.insert(key)
        out += "| \(e.format) | \(fmt(e.sparsity)) | \(mode) | " + cells.joined(separator: " | ") + " |\n"
      }
    }
    out += "\n## Rows\n\n"
    out += "| shape MxNxK | n× | kpc | format | sparsity | kernel | mode | R | no list ms | list ms | ratio | runs |\n"
    out += "|---|--:|--:|---|--:|---|---|--:|--:|--:|--:|--:|\n"
    for r in rows {
      out += "| \(r.shape) | \(r.count) | \(r.kPerChannel) | \(r.format) | \(fmt(r.sparsity)) | \(r.kernel) | \(r.mode) "
      out += "| \(fmt(r.fraction)) | \(String(format: "%.3f", r.plainMs)) | \(String(format: "%.3f", r.listMs)) "
      out += "| \(String(format: "%.2f", r.ratio)) | \(r.runs) |\n"
    }
    return out
  }

  func fmt(_ x: Double) -> String { x == x.rounded() ? String(Int(x)) : String(format: "%g", x) }
}

extension KernelBench {
  /// Input channel size of a layer from its shape-list label ("... 3x3" → 9), 1 when unknown.
  static func kPerChannel(_ s: LayerShape) -> Int {
    for (tag, kpc) in [("7x7", 49), ("5x5", 25), ("3x3", 9)] where s.label.contains(tag) && s.k % kpc == 0 {
      return kpc
    }
    return 1
  }

  /// `count` of `0..<total` chosen at random, increasing.
  static func subset(_ count: Int, of total: Int, _ rng: inout SeededRandom) -> [UInt32] {
    var idx = Array(0..<total)
    for i in 0..<min(count, total) { idx.swapAt(i, Int.random(in: i..<total, using: &rng)) }
    return idx[0..<min(count, total)].sorted().map(UInt32.init)
  }

  public static func runActive(
    _ o: ActiveBenchOptions, machine: MachineInfo, progress: ((String) -> Void)? = nil
  ) throws(BenchError) -> ActiveBenchReport {
    if o.shapes.isEmpty || o.fractions.isEmpty || o.modes.isEmpty { throw BenchError("nothing to run") }
    for f in o.fractions where !(f > 0 && f <= 1) { throw BenchError("active fraction \(f) is outside (0, 1]") }
    var rows: [ActiveBenchRow] = []
    let runner = SpMMRunner(threads: 1)
    for (si, shape) in o.shapes.enumerated() {
      let (m, n, k) = (shape.m, shape.n, shape.k)
      let kpc = kPerChannel(shape)
      let x = AlignedBuffer(count: k * n), y = AlignedBuffer(count: m * n)
      var xr = SeededRandom(seed: seed(o.seed, [m, n, k, -1]))
      for i in 0..<k * n { x.pointer[i] = Float.random(in: -1...1, using: &xr) }
      for (ci, (format, sparsity)) in o.cases.enumerated() {
        var rng = SeededRandom(seed: seed(o.seed, [m, n, k, ci]))
        let w: [Float]
        switch format {
        case .nm: w = WeightPatterns.nm(rows: m, cols: k, n: 2, m: 4, using: &rng)
        case .bsr(let br, let bc):
          w = WeightPatterns.blocks(rows: m, cols: k, blockRows: br, blockCols: bc, sparsity: sparsity, using: &rng)
        default: w = WeightPatterns.unstructured(rows: m, cols: k, sparsity: sparsity, using: &rng)
        }
        let packed: PackedMatrix
        do { packed = try PackedMatrix(dense: w, rows: m, cols: k, format: format) } catch {
          throw BenchError("packing \(format) \(shape.name): \(error)")
        }
        for mode in o.modes {
          for f in o.fractions {
            var lr = SeededRandom(seed: seed(o.seed, [m, n, k, ci, Int(f * 1000)]))
            let ins = mode == .output ? nil : subset(Int((f * Double(k / kpc)).rounded()), of: k / kpc, &lr)
            let outs = mode == .input ? nil : subset(Int((f * Double(m)).rounded()), of: m, &lr)
            let active = ActiveChannels(outputRows: outs, inputChannels: ins, kPerChannel: kpc)
            var tp: [Double] = [], tl: [Double] = []
            var total = 0.0
            do {
              try runner.run(packed, x: x.pointer, n: n, y: y.pointer)
              try runner.run(packed, x: x.pointer, n: n, y: y.pointer, active: active)
              while tp.count < o.maxRuns && (tp.count < o.minRuns || total < o.minTime) {
                let t0 = DispatchTime.now().uptimeNanoseconds
                try runner.run(packed, x: x.pointer, n: n, y: y.pointer)
                let t1 = DispatchTime.now().uptimeNanoseconds
                try runner.run(packed, x: x.pointer, n: n, y: y.pointer, active: active)
                let t2 = DispatchTime.now().uptimeNanoseconds
                tp.append(Double(t1 - t0) / 1e9)
                tl.append(Double(t2 - t1) / 1e9)
                total += tp.last! + tl.last!
              }
            } catch {
              throw BenchError("running \(format) \(shape.name) with lists: \(error)")
            }
            let p = TimingStats(seconds: tp), l = TimingStats(seconds: tl)
            rows.append(
              ActiveBenchRow(
                shape: shape.name, layer: shape.label, count: shape.count, kPerChannel: kpc, format: format.description,
                sparsity: sparsity, kernel: packed.kernelName, mode: mode.rawValue, fraction: f, plainMs: p.medianMs,
                listMs: l.medianMs, runs: tp.count))
          }
        }
      }
      progress?("[\(si + 1)/\(o.shapes.count)] \(shape.name) done")
    }
    return ActiveBenchReport(machine: machine, loadAverageEnd: MachineInfo.loadAverage(), rows: rows)
  }
}
