import Dispatch
import Foundation
import Sparrow

/// One depthwise row kernel timed on one depthwise layer shape.
public struct DepthwiseBenchRow: Sendable, Codable, Equatable {
  public var list: String, layer: String
  /// Channels, output pixels (Hout·Wout), taps (kh·kw): the depthwise lists' M N K.
  public var channels: Int, pixels: Int, taps: Int
  public var kernel: String
  public var time: TimingStats?
  /// 2·channels·pixels·taps / t.
  public var gflops: Double = 0
  /// "ok" when it matches the first kernel of the list (the scalar one), else "FAIL ...".
  public var check: String = "-"
  public var error: String?
}

extension KernelBench {
  /// Every runnable depthwise row kernel of the library's list (`DepthwiseKernel.microkernels`)
  /// on depthwise layer shapes (M = channels, N = Hout·Wout, K = kh·kw, from
  /// `Bench/shapes/*-depthwise.txt`), 1 thread. The lists keep no stride, so each layer runs as
  /// a square, stride-1, "same" convolution of its output size: timings compare kernels, not
  /// models.
  public static func runDepthwise(_ shapes: [LayerShape], options o: KernelBenchOptions) -> [DepthwiseBenchRow] {
    var rows: [DepthwiseBenchRow] = []
    for shape in shapes {
      let side = Int(Double(shape.n).squareRoot().rounded()), k = Int(Double(shape.k).squareRoot().rounded())
      var base = DepthwiseBenchRow(
        list: shape.list, layer: shape.label, channels: shape.m, pixels: shape.n, taps: shape.k, kernel: "")
      guard side * side == shape.n, k * k == shape.k else {
        base.error = "not a square layer (N = \(shape.n), K = \(shape.k))"
        rows.append(base)
        continue
      }
      let s = DepthwiseShape(
        channels: shape.m, h: side, w: side, kh: k, kw: k, padTop: k / 2, padLeft: k / 2, ho: side, wo: side)
      let kernel: DepthwiseKernel
      do { kernel = try DepthwiseKernel(s) } catch {
        base.error = "\(error)"
        rows.append(base)
        continue
      }
      var rng = SeededRandom(seed: seed(o.seed, [shape.m, shape.n, shape.k, -2]))
      let x = AlignedBuffer(count: shape.m * shape.n), w = AlignedBuffer(count: shape.m * shape.k)
      for i in 0..<shape.m * shape.n { x.pointer[i] = Float.random(in: -1...1, using: &rng) }
      for i in 0..<shape.m * shape.k { w.pointer[i] = Float.random(in: -1...1, using: &rng) }
      let ref = AlignedBuffer(count: shape.m * shape.n), y = AlignedBuffer(count: shape.m * shape.n)
      let ws = UnsafeMutableRawPointer.allocate(byteCount: max(kernel.workspaceBytes(threads: 1), 64), alignment: 64)
      defer { ws.deallocate() }
      for (i, uk) in DepthwiseKernel.microkernels.enumerated() where uk.runnable {
        var row = base
        row.kernel = uk.name
        do {
          func once(_ out: AlignedBuffer) throws(KernelError) {
            try kernel.run(
              x: x.pointer, w: w.pointer, bias: nil, lo: -.infinity, hi: .infinity, y: out.pointer, workspace: ws,
              threads: 1, microkernel: uk.index)
          }
          if i == 0 { try once(ref) }
          for _ in 0..<o.warmupRuns { try once(y) }
          if o.checkResults { row.check = compare(y.pointer, ref.pointer, count: shape.m * shape.n) }
          var times: [Double] = []
          var total = 0.0
          while times.count < o.maxRuns && (times.count < o.minRuns || total < o.minTime) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            try once(y)
            let t = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            times.append(t)
            total += t
          }
          let stats = TimingStats(seconds: times)
          row.time = stats
          if stats.medianMs > 0 { row.gflops = round6(2 * Double(shape.m * shape.n * shape.k) / (stats.medianMs * 1e6)) }
        } catch {
          row.error = "running: \(error)"
        }
        rows.append(row)
      }
    }
    return rows
  }

  /// The depthwise rows as a Markdown table.
  public static func depthwiseMarkdown(_ rows: [DepthwiseBenchRow]) -> String {
    var out = "## Depthwise row kernels (1 thread; square, stride 1, same padding)\n\n"
    out += "| list | channels | pixels | taps | kernel | ms | GFLOP/s | check |\n|---|--:|--:|--:|---|--:|--:|---|\n"
    for r in rows {
      let ms = r.time.map { String(format: "%.4f", $0.medianMs) } ?? "-"
      out += "| \(r.list) | \(r.channels) | \(r.pixels) | \(r.taps) | \(r.kernel) | \(ms) "
      out += "| \(String(format: "%.2f", r.gflops)) | \(r.error ?? r.check) |\n"
    }
    return out
  }
}
