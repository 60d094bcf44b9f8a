internal import SparrowKernels

/// The row-wise C kernels (Kernels/rowwise): softmax with a scale and an additive mask, GELU
/// (erf and tanh forms) and layer normalisation, each over rows of `n` contiguous floats, rows
/// `xStride` / `yStride` floats apart. The kernel of the ISA in force is bound once per process
/// and op; `microkernel` forces a registered one (tests, benchmarks). Threads split the rows
/// (`TileRunner`). Callers check sizes: these functions cannot fail, and do nothing for
/// `rows == 0` or `n == 0`.
public enum RowKernels {
  public enum Op: Int, Sendable, CaseIterable {
    case softmax = 0
    case geluErf
    case geluTanh
    case layerNorm
    var c: sparrow_row_op { sparrow_row_op(rawValue: UInt32(rawValue)) }
  }

  /// Every registered row kernel (index, name, op, runnable on this CPU): tests run them all.
  public static var microkernels: [(index: Int, name: String, op: Op, runnable: Bool)] {
    (0..<sparrow_row_ukernel_count()).compactMap { i in
      guard let op = Op(rawValue: Int(sparrow_row_ukernel_op(i))) else { return nil }
      return (Int(i), String(cString: sparrow_row_ukernel_name(i)), op, sparrow_row_ukernel_runnable(i) != 0)
    }
  }

  /// The kernel the active ISA uses for `op`.
  public static func kernelName(_ op: Op) -> String {
    String(cString: sparrow_row_ukernel_name(sparrow_row_ukernel_auto(op.c)))
  }

  /// `y[r] = softmax(alpha · x[r] + mask[r])` for `rows` rows: the mask row of row r starts at
  /// `mask + maskRows[r]` (element offsets), or at `mask` for every row when `maskRows` is nil;
  /// no mask: nil.
  public static func softmax(
    rows: Int, n: Int, x: UnsafePointer<Float>, xStride: Int, alpha: Float = 1, mask: UnsafePointer<Float>? = nil,
    maskRows: UnsafePointer<UInt32>? = nil, y: UnsafeMutablePointer<Float>, yStride: Int, threads: Int = 1,
    microkernel: Int? = nil
  ) {
    var c = call(.softmax, rows: rows, n: n, x: x, xStride: xStride, y: y, yStride: yStride, microkernel: microkernel)
    c.alpha = alpha
    c.mask = mask
    c.mask_rows = maskRows
    run(&c, threads: threads)
  }

  /// `y = (x - mean) / sqrt(var + epsilon) · scale + bias` per row; `scale`, `bias`: `n` floats
  /// or nil (ones, zeros); the statistics of row r to `mean[r]` and `invStdDev[r]` when given.
  public static func layerNorm(
    rows: Int, n: Int, x: UnsafePointer<Float>, xStride: Int, scale: UnsafePointer<Float>?, bias: UnsafePointer<Float>?,
    epsilon: Float, y: UnsafeMutablePointer<Float>, yStride: Int, mean: UnsafeMutablePointer<Float>? = nil,
    invStdDev: UnsafeMutablePointer<Float>? = nil, threads: Int = 1, microkernel: Int? = nil
  ) {
    var c = call(.layerNorm, rows: rows, n: n, x: x, xStride: xStride, y: y, yStride: yStride, microkernel: microkernel)
    (c.scale, c.bias, c.epsilon, c.mean, c.inv_std) = (scale, bias, epsilon, mean, invStdDev)
    run(&c, threads: threads)
  }

  /// GELU of `count` contiguous floats (`y` may be `x`). With threads, the values are split into
  /// equal runs (multiples of 64) and a remainder.
  public static func gelu(
    _ form: FusedEpilogue.GeluForm, count: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
    threads: Int = 1, microkernel: Int? = nil
  ) {
    guard count > 0 else { return }
    let op: Op = form == .exact ? .geluErf : .geluTanh
    // Below ~16k values a second thread costs more than it saves.
    let parts = min(max(threads, 1), max(1, count / 16384))
    let run0 = parts > 1 ? (count / parts) & ~63 : count
    let full = run0 > 0 ? count / run0 : 0
    if full > 0 {
      var c = call(op, rows: full, n: run0, x: x, xStride: run0, y: y, yStride: run0, microkernel: microkernel)
      c.rows_per_task = 1
      run(&c, threads: parts)
    }
    let done = full * run0
    if done < count {
      var c = call(
        op, rows: 1, n: count - done, x: x + done, xStride: 0, y: y + done, yStride: 0, microkernel: microkernel)
      run(&c, threads: 1)
    }
  }

  private static func call(
    _ op: Op, rows: Int, n: Int, x: UnsafePointer<Float>, xStride: Int, y: UnsafeMutablePointer<Float>, yStride: Int,
    microkernel: Int?
  ) -> sparrow_rows_call {
    var c = sparrow_rows_call()
    c.op = op.c
    c.ukernel = microkernel.map { $0 >= 0 ? $0 : Int.max } ?? bound[op.rawValue]
    (c.rows, c.n) = (max(rows, 0), max(n, 0))
    (c.x, c.x_stride, c.y, c.y_stride) = (x, xStride * 4, y, yStride * 4)
    c.alpha = 1
    return c
  }

  private static func run(_ c: inout sparrow_rows_call, threads: Int) {
    guard c.rows > 0, c.n > 0 else { return }
    // Below ~16k values a second thread costs more than it saves.
    let t = c.rows * c.n < 16384 ? 1 : max(1, min(threads, c.rows))
    if c.rows_per_task == 0 { c.rows_per_task = (c.rows + t - 1) / t }
    let tasks = sparrow_rows_tasks(&c)
    withUnsafeMutablePointer(to: &c) { p in TileRunner.run(tasks: tasks, threads: t, sparrow_rows_task, p) }
  }

  /// The active ISA's kernel per op, bound once (an ISA forced later by a test rebinds through
  /// `microkernel`).
  private static let bound: [Int] = Op.allCases.map { sparrow_row_ukernel_auto($0.c) }
}
