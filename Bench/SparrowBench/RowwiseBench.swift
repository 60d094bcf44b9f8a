import Dispatch
import Foundation
import Sparrow

/// One row kernel timed on one shape (rows x n).
public struct RowwiseBenchRow: Sendable, Codable, Equatable {
  public var list: String, layer: String
  public var rows: Int, n: Int
  public var op: String, kernel: String
  public var time: TimingStats?
  /// Nanoseconds per value (median).
  public var nsPerValue: Double = 0
  /// The op's scalar kernel's median over this one's.
  public var speedupOverScalar: Double = 0
  /// "ok" when it matches the op's first (scalar) kernel within 1e-5 + 1e-4·max|ref|, else "FAIL ...".
  public var check: String = "-"
}

extension KernelBench {
  /// Every runnable row kernel of the library's list (`RowKernels.microkernels`: softmax with a
  /// scale and a mask row, GELU, LayerNorm with scale and bias) on every shape (M = rows,
  /// N = row length, from `Bench/shapes/rowwise.txt`), 1 thread, seeded data in [-4, 4].
  public static func runRowwise(_ shapes: [LayerShape], options o: KernelBenchOptions) -> [RowwiseBenchRow] {
    var rows: [RowwiseBenchRow] = []
    for shape in shapes where shape.m > 0 && shape.n > 0 {
      let count = shape.m * shape.n
      var rng = SeededRandom(seed: seed(o.seed, [shape.m, shape.n, -3]))
      let x = AlignedBuffer(count: count), mask = AlignedBuffer(count: shape.n)
      let scale = AlignedBuffer(count: shape.n), bias = AlignedBuffer(count: shape.n)
      for i in 0..<count { x.pointer[i] = Float.random(in: -4...4, using: &rng) }
      for i in 0..<shape.n {
        mask.pointer[i] = i % 5 == 4 ? -.greatestFiniteMagnitude : 0
        scale.pointer[i] = Float.random(in: 0.5...1.5, using: &rng)
        bias.pointer[i] = Float.random(in: -0.5...0.5, using: &rng)
      }
      let ref = AlignedBuffer(count: count), y = AlignedBuffer(count: count)
      for op in RowKernels.Op.allCases {
        var scalarMs = 0.0
        for (i, uk) in RowKernels.microkernels.filter({ $0.op == op }).enumerated() where uk.runnable {
          var row = RowwiseBenchRow(
            list: shape.list, layer: shape.label, rows: shape.m, n: shape.n, op: "\(op)", kernel: uk.name)
          func once(_ out: AlignedBuffer) {
            switch op {
            case .softmax:
              RowKernels.softmax(
                rows: shape.m, n: shape.n, x: x.pointer, xStride: shape.n, alpha: 0.125, mask: mask.pointer,
                y: out.pointer, yStride: shape.n, microkernel: uk.index)
            case .geluErf, .geluTanh:
              RowKernels.gelu(
                op == .geluErf ? .exact : .tanh, count: count, x: x.pointer, y: out.pointer, microkernel: uk.index)
            case .layerNorm:
              RowKernels.layerNorm(
                rows: shape.m, n: shape.n, x: x.pointer, xStride: shape.n, scale: scale.pointer, bias: bias.pointer,
                epsilon: 1e-12, y: out.pointer, yStride: shape.n, microkernel: uk.index)
            }
          }
          if i == 0 { once(ref) }
          for _ in 0..<o.warmupRuns { once(y) }
          if o.checkResults { row.check = compare(y.pointer, ref.pointer, count: count) }
          var times: [Double] = []
          var total = 0.0
          while times.count < o.maxRuns && (times.count < o.minRuns || total < o.minTime) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            once(y)
            let t = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            times.append(t)
            total += t
          }
          let stats = TimingStats(seconds: times)
          row.time = stats
          row.nsPerValue = round6(stats.medianMs * 1e6 / Double(count))
          if i == 0 { scalarMs = stats.medianMs }
          if stats.medianMs > 0 { row.speedupOverScalar = round6(scalarMs / stats.medianMs) }
          rows.append(row)
        }
      }
    }
    return rows
  }

  /// The row-kernel rows as a Markdown table.
  public static func rowwiseMarkdown(_ rows: [RowwiseBenchRow]) -> String {
    var out = "## Row-wise kernels (1 thread; softmax with scale and mask, LayerNorm with scale and bias)\n\n"
    out +=
      "| list | rows | n | op | kernel | ms | ns/value | vs scalar | check |\n|---|--:|--:|---|---|--:|--:|--:|---|\n"
    for r in rows {
      let ms = r.time.map { String(format: "%.4f", $0.medianMs) } ?? "-"
      out +=
        "| \(r.list) | \(r.rows) | \(r.n) | \(r.op) | \(r.kernel) | \(ms) | \(String(format: "%.2f", r.nsPerValue)) "
      out += "| \(String(format: "%.2f", r.speedupOverScalar))x | \(r.check) |\n"
    }
    return out
  }
}
