import Dispatch
import Foundation
import Sparrow

/// The sparse format families the kernel benchmark runs against dense.
public enum BenchFormat: String, Sendable, Codable, CaseIterable {
  /// Unstructured random zeros, packed as CSR.
  case csr
  /// 2:4 (only at sparsity 0.5), packed as N:M.
  case nm
  /// Random whole blocks zeroed, packed as BSR, for each block shape asked for.
  case bsr
  /// Random whole rows (output channels) zeroed, packed as CHANNEL.
  case channel
  /// A dense matrix (no zeros) in Sparrow's own packed dense kernels: one row per shape,
  /// whatever sparsities are asked for, against OpenBLAS on the same matrix.
  case packed
}

/// A BSR block shape, `rows x cols`.
public struct BlockShape: Sendable, Hashable, Codable, CustomStringConvertible {
  public var rows: Int, cols: Int
  public init(rows: Int, cols: Int) {
    self.rows = rows
    self.cols = cols
  }
  public var description: String { "\(rows)x\(cols)" }

  /// Parses `4x1`.
  public init(parsing s: String) throws(BenchError) {
    let p = s.lowercased().split(separator: "x")
    guard p.count == 2, let r = Int(p[0]), let c = Int(p[1]), r > 0, c > 0, r <= 64, c <= 64 else {
      throw BenchError("bad block shape '\(s)': expected ROWSxCOLS, e.g. 4x1")
    }
    self.init(rows: r, cols: c)
  }
}

/// Which kernels run each case: the dispatcher's choice, or every kernel of the library's
/// list (`MicroKernel.all`) that fits the case and runs on this CPU, forced one by one.
public enum KernelSelection: String, Sendable, Codable, CaseIterable {
  case automatic = "auto"
  case listed = "all"
}

/// What to run and how long to time it.
public struct KernelBenchOptions: Sendable {
  public var shapes: [LayerShape]
  public var sparsities: [Double] = [0.5, 0.7, 0.8, 0.9, 0.95]
  public var formats: [BenchFormat] = BenchFormat.allCases
  public var blocks: [BlockShape] = [
    BlockShape(rows: 4, cols: 1), BlockShape(rows: 8, cols: 1), BlockShape(rows: 1, cols: 4),
    BlockShape(rows: 4, cols: 4),
  ]
  public var threads: [Int] = [1, 2]
  /// `.listed`: a row per fitting kernel of the list, so every listed kernel is benchmarked.
  public var kernels: KernelSelection = .automatic
  /// Keep repeating a (dense, format) pair until their measured time adds up to this many
  /// seconds and at least `minRuns` pairs ran.
  public var minTime: Double = 0.2
  public var minRuns: Int = 5
  /// A cap for tiny shapes (N = 1 layers take microseconds).
  public var maxRuns: Int = 100_000
  /// Discarded runs of each, before timing.
  public var warmupRuns: Int = 1
  public var seed: UInt64 = 1
  /// Compare each format's output with dense's once per case.
  public var checkResults = true

  public init(shapes: [LayerShape]) { self.shapes = shapes }

  /// Tiny timing settings (tests, smoke runs): timings are not meaningful.
  public mutating func makeQuick() {
    minTime = 0
    minRuns = 2
    maxRuns = 2
    warmupRuns = 1
  }

  /// Checks the settings; the error names the bad one.
  public func validate() throws(BenchError) {
    if shapes.isEmpty { throw BenchError("no shapes to run") }
    if sparsities.isEmpty { throw BenchError("no sparsity levels given") }
    for s in sparsities where !(s >= 0 && s < 1) {
      throw BenchError("sparsity \(s) is outside [0, 1)")
    }
    if formats.isEmpty { throw BenchError("no formats given") }
    if formats.contains(.bsr) && blocks.isEmpty { throw BenchError("bsr asked for but no block shapes given") }
    if threads.isEmpty || threads.contains(where: { $0 < 1 || $0 > 1024 }) {
      throw BenchError("thread counts must be in 1...1024, got \(threads)")
    }
    if !(minTime >= 0 && minTime < 3600) { throw BenchError("min-time \(minTime) is outside [0, 3600) seconds") }
    if minRuns < 1 || maxRuns < minRuns { throw BenchError("need 1 <= minRuns <= maxRuns") }
  }
}

/// One benchmark case on a shape: the pattern, its sparsity and the format it is packed into.
struct BenchCase {
  var family: BenchFormat
  var format: WeightFormat
  var sparsity: Double
  var block: BlockShape?
  /// N:M: blocks of this many rows share one pattern (the shared-pattern kernels' weights).
  var sharedRows = 1

  func weights(rows: Int, cols: Int, using rng: inout SeededRandom) -> [Float] {
    switch family {
    case .csr: return WeightPatterns.unstructured(rows: rows, cols: cols, sparsity: sparsity, using: &rng)
    case .nm: return WeightPatterns.nm(rows: rows, cols: cols, n: 2, m: 4, sharedRows: sharedRows, using: &rng)
    case .bsr:
      let b = block ?? BlockShape(rows: 1, cols: 1)
      return WeightPatterns.blocks(
        rows: rows, cols: cols, blockRows: b.rows, blockCols: b.cols, sparsity: sparsity, using: &rng)
    case .channel: return WeightPatterns.channels(rows: rows, cols: cols, sparsity: sparsity, using: &rng)
    case .packed: return WeightPatterns.dense(rows: rows, cols: cols, using: &rng)
    }
  }

  /// The kernels of the list that can run this case here (nil: the automatic choice).
  func kernels(_ selection: KernelSelection) -> [MicroKernel?] {
    guard selection == .listed else { return [nil] }
    let fitting = MicroKernel.all.filter { k in
      guard k.runnable, k.format == format.kind else { return false }
      switch format {
      case .bsr(let r, let c): return (k.blockRows ?? r) == r && (k.blockCols ?? c) == c
      // An N:M kernel with block rows runs only weights whose blocks of rows share a pattern.
      case .nm: return k.blockRows == nil || (sharedRows > 1 && k.blockRows == sharedRows)
      default: return true
      }
    }
    return fitting.isEmpty ? [nil] : fitting
  }

  static func all(_ o: KernelBenchOptions) -> [BenchCase] {
    var cases: [BenchCase] = []
    for f in o.formats {
      switch f {
      case .csr: cases += o.sparsities.map { BenchCase(family: .csr, format: .csr, sparsity: $0) }
      case .nm:
        if o.sparsities.contains(where: { abs($0 - 0.5) < 1e-9 }) {
          cases.append(BenchCase(family: .nm, format: .nm(n: 2, m: 4), sparsity: 0.5))
          // Every listed kernel is benchmarked: the shared-pattern ones need shared weights.
          for r in Set(MicroKernel.all.filter { $0.format == .nm && $0.runnable }.compactMap(\.blockRows)).sorted()
          where o.kernels == .listed {
            cases.append(BenchCase(family: .nm, format: .nm(n: 2, m: 4), sparsity: 0.5, sharedRows: r))
          }
        }
      case .bsr:
        for b in o.blocks {
          cases += o.sparsities.map {
            BenchCase(family: .bsr, format: .bsr(rows: b.rows, cols: b.cols), sparsity: $0, block: b)
          }
        }
      case .channel: cases += o.sparsities.map { BenchCase(family: .channel, format: .channel, sparsity: $0) }
      case .packed: cases.append(BenchCase(family: .packed, format: .packed, sparsity: 0))
      }
    }
    return cases
  }
}

/// A thread count and the backend that runs its tiles (nil: one thread, no backend).
struct ThreadConfig {
  var threads: Int
  var backend: Threads.Backend?
  var label: String { backend?.rawValue ?? "serial" }

  static func all(_ counts: [Int]) -> [ThreadConfig] {
    counts.flatMap { t -> [ThreadConfig] in
      if t == 1 { return [ThreadConfig(threads: 1, backend: nil)] }
      var c = [ThreadConfig(threads: t, backend: .dispatch)]
      if kernelsHaveOpenMP { c.append(ThreadConfig(threads: t, backend: .openMP)) }
      return c
    }
  }
}

/// `sparrow bench kernels`: every format against dense on real layer shapes.
public enum KernelBench {
  /// Runs the benchmark. `progress` gets one line per shape (with an ETA); the CLI sends it
  /// to stderr.
  public static func run(
    _ options: KernelBenchOptions, machine: MachineInfo, progress: ((String) -> Void)? = nil
  ) throws(BenchError) -> KernelBenchReport {
    try options.validate()
    let cases = BenchCase.all(options)
    if cases.isEmpty {
      throw BenchError("nothing to run: nm runs only at sparsity 0.5, and no other format was asked for")
    }
    let configs = ThreadConfig.all(options.threads)
    var rows: [KernelBenchRow] = []
    let start = DispatchTime.now().uptimeNanoseconds
    for (si, shape) in options.shapes.enumerated() {
      rows += runShape(shape, index: si, cases: cases, configs: configs, options: options)
      let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
      let left = options.shapes.count - si - 1
      let eta = elapsed / Double(si + 1) * Double(left)
      let fails = rows.filter { $0.check.hasPrefix("FAIL") || $0.error != nil }.count
      progress?(
        "[\(si + 1)/\(options.shapes.count)] \(shape.list) \(shape.name) done, elapsed \(format(elapsed)) s, ETA \(format(eta)) s"
          + (fails > 0 ? ", \(fails) failed rows so far" : ""))
    }
    return KernelBenchReport(machine: machine, settings: .init(options), rows: rows)
  }

  static func format(_ s: Double) -> String { String(format: "%.0f", s) }

  /// Seeds that depend only on the run's seed, the shape and the case: a row reproduces
  /// without running the rows before it.
  static func seed(_ base: UInt64, _ parts: [Int]) -> UInt64 {
    var r = SeededRandom(seed: base)
    var h = r.next()
    for p in parts {
      var g = SeededRandom(seed: h ^ UInt64(truncatingIfNeeded: p))
      h = g.next()
    }
    return h
  }

  static func runShape(
    _ shape: LayerShape, index: Int, cases: [BenchCase], configs: [ThreadConfig], options: KernelBenchOptions
  ) -> [KernelBenchRow] {
    let (m, n, k) = (shape.m, shape.n, shape.k)
    let x = AlignedBuffer(count: k * n)
    let yDense = AlignedBuffer(count: m * n), yFormat = AlignedBuffer(count: m * n)
    var xr = SeededRandom(seed: seed(options.seed, [m, n, k, -1]))
    for i in 0..<k * n { x.pointer[i] = Float.random(in: -1...1, using: &xr) }
    let runners = configs.map { SpMMRunner(threads: $0.threads, backend: $0.backend) }
    var rows: [KernelBenchRow] = []

    for (ci, c) in cases.enumerated() {
      var rng = SeededRandom(seed: seed(options.seed, [m, n, k, ci, Int(c.sparsity * 1e6)]))
      let w = c.weights(rows: m, cols: k, using: &rng)
      let nnz = w.reduce(0) { $1 != 0 ? $0 + 1 : $0 }
      var base = KernelBenchRow(shape: shape, case: c, nnz: nnz)
      let dense: PackedMatrix, packed: PackedMatrix
      do {
        dense = try PackedMatrix(dense: w, rows: m, cols: k, format: .dense)
        packed = try PackedMatrix(dense: w, rows: m, cols: k, format: c.format)
      } catch {
        base.error = "packing: \(error)"
        rows += configs.map { var r = base; r.threads = $0.threads; r.backend = $0.label; return r }
        continue
      }
      base.denseKernel = dense.kernelName
      base.packedBytes = packed.packedBytes
      base.densePackedBytes = dense.packedBytes
      base.storedValues = packed.storedValues

      for kernel in c.kernels(options.kernels) {
        do {
          try packed.force(kernel: kernel)
        } catch {
          var failed = base
          failed.kernel = kernel?.name ?? ""
          failed.error = "forcing: \(error)"
          rows += configs.map { var r = failed; r.threads = $0.threads; r.backend = $0.label; return r }
          continue
        }
        base.kernel = packed.kernelName
        rows += configs.enumerated().map { (ti, cfg) -> KernelBenchRow in
          var row = base
          row.threads = cfg.threads
          row.backend = cfg.label
          do {
            let r = runners[ti]
            for _ in 0..<options.warmupRuns {
              try r.run(dense, x: x.pointer, n: n, y: yDense.pointer)
              try r.run(packed, x: x.pointer, n: n, y: yFormat.pointer)
            }
            // Checked under every thread config: a parallel driver can break what serial got right.
            if options.checkResults { row.check = compare(yFormat.pointer, yDense.pointer, count: m * n) }
            let (td, tf) = try timePair(r, dense, packed, x: x, n: n, yDense: yDense, yFormat: yFormat, options)
            row.fill(dense: td, format: tf)
          } catch {
            row.error = "running: \(error)"
          }
          return row
        }
      }
    }
    return rows
  }

  /// Times dense and the format alternately (dense, format, dense, format, ...), so drift in
  /// clock speed or load hits both alike.
  static func timePair(
    _ r: SpMMRunner, _ dense: PackedMatrix, _ packed: PackedMatrix, x: AlignedBuffer, n: Int,
    yDense: AlignedBuffer, yFormat: AlignedBuffer, _ o: KernelBenchOptions
  ) throws(KernelError) -> ([Double], [Double]) {
    var td: [Double] = [], tf: [Double] = []
    var total = 0.0
    while td.count < o.maxRuns && (td.count < o.minRuns || total < o.minTime) {
      let t0 = DispatchTime.now().uptimeNanoseconds
      try r.run(dense, x: x.pointer, n: n, y: yDense.pointer)
      let t1 = DispatchTime.now().uptimeNanoseconds
      try r.run(packed, x: x.pointer, n: n, y: yFormat.pointer)
      let t2 = DispatchTime.now().uptimeNanoseconds
      let d = Double(t1 - t0) / 1e9, f = Double(t2 - t1) / 1e9
      td.append(d)
      tf.append(f)
      total += d + f
    }
    return (td, tf)
  }

  /// "ok" when `|got - ref| <= 1e-5 + 1e-4 * max|ref|` everywhere (the reference is OpenBLAS
  /// with a different summation order, so the bound scales with the output, not per entry).
  static func compare(_ got: UnsafePointer<Float>, _ ref: UnsafePointer<Float>, count: Int) -> String {
    var scale: Float = 0, err: Float = 0
    for i in 0..<count {
      scale = max(scale, abs(ref[i]))
      let e = abs(got[i] - ref[i])
      if !(e <= err) { err = e.isNaN ? .infinity : e }
    }
    if err <= 1e-5 + 1e-4 * scale { return "ok" }
    return "FAIL max err \(err) (max |ref| \(scale))"
  }
}

/// A 64-byte aligned float buffer, zero-filled, freed on deinit.
final class AlignedBuffer {
  let pointer: UnsafeMutablePointer<Float>
  init(count: Int) {
    let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
    pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
    pointer.initialize(repeating: 0, count: max(count, 1))
  }
  deinit { pointer.deallocate() }
}
