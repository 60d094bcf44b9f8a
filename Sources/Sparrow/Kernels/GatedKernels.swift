internal import SparrowKernels

/// The input-gated linear kernels (Kernels/gate): `y[r] = bias + Σ x[r, i] · W[i, :]` over the
/// inputs token r keeps (`|x[r, i]| >= threshold[r]`, NaN kept), W input-channel-major (K x n),
/// dense or CSC. Tokens go through the microkernel in tiles sharing the union of their kept
/// inputs, on up to `threads` threads; callers check sizes (the call cannot fail).
public enum GatedKernels {
  /// A K-major weight: `k` rows of `n` outputs.
  public enum Weight: Sendable {
    case dense([Float])
    /// Per input row i, nonzeros `ptr[i] ..< ptr[i + 1]`: output column and value.
    case csc(ptr: [UInt32], columns: [UInt32], values: [Float])

    /// A K-major weight from `w` (`n x k`, row-major: the linear layer's rows), CSC when `sparse`.
    public init(rowsMajor w: [Float], n: Int, k: Int, sparse: Bool) {
      if sparse {
        var ptr = [UInt32](repeating: 0, count: k + 1)
        for o in 0..<n { for i in 0..<k where w[o * k + i] != 0 { ptr[i + 1] += 1 } }
        for i in 0..<k { ptr[i + 1] += ptr[i] }
        var fill = Array(ptr.dropLast())
        var cols = [UInt32](repeating: 0, count: Int(ptr[k])), vals = [Float](repeating: 0, count: Int(ptr[k]))
        for o in 0..<n {
          for i in 0..<k where w[o * k + i] != 0 {
            cols[Int(fill[i])] = UInt32(o)
            vals[Int(fill[i])] = w[o * k + i]
            fill[i] += 1
          }
        }
        self = .csc(ptr: ptr, columns: cols, values: vals)
      } else {
        var t = [Float](repeating: 0, count: n * k)
        for o in 0..<n { for i in 0..<k { t[i * n + o] = w[o * k + i] } }
        self = .dense(t)
      }
    }

    public var isSparse: Bool { if case .csc = self { return true } else { return false } }
  }

  /// Tokens one microkernel call multiplies at most.
  public static var maxTileRows: Int { Int(SPARROW_GATE_MAX_ROWS) }

  /// Workspace bytes for `rows` tokens of `k` inputs in tiles of `tileRows` tokens.
  public static func workspaceBytes(rows: Int, k: Int, tileRows: Int) -> Int {
    sparrow_gated_workspace_bytes(rows, k, tileRows)
  }

  /// Every registered linear kernel (index, name, sparse, runnable here); the gathered GEMM's
  /// (kind ROWS) are `GatherGemm.microkernels`.
  public static var microkernels: [(index: Int, name: String, sparse: Bool, runnable: Bool)] {
    (0..<sparrow_gate_ukernel_count()).filter { sparrow_gate_ukernel_kind($0) <= 1 }.map { i in
      (
        Int(i), String(cString: sparrow_gate_ukernel_name(i)), sparrow_gate_ukernel_kind(i) == 1,
        sparrow_gate_ukernel_runnable(i) != 0
      )
    }
  }

  /// The kernel the active ISA uses for a dense (sparse) weight.
  public static func kernelName(sparse: Bool) -> String {
    String(
      cString: sparrow_gate_ukernel_name(sparrow_gate_ukernel_auto(sparse ? SPARROW_GATE_CSC : SPARROW_GATE_DENSE)))
  }

  /// `out` (`rows x k`) = `x` with the values each token skips (as `run` decides) set to zero;
  /// returns the values kept.
  @discardableResult
  public static func mask(
    rows: Int, k: Int, x: UnsafePointer<Float>, thresholds: UnsafePointer<Float>, perRow: Bool,
    out: UnsafeMutablePointer<Float>
  ) -> Int {
    sparrow_gate_mask(rows, k, x, k * 4, thresholds, perRow ? 1 : 0, out)
  }

  /// `rows` tokens of `k` inputs (`x`, row-major) through `weight` (`k x n`) into `y` (`rows x n`);
  /// `thresholds` holds one value per token, or one for all (`perRow` false). Returns the
  /// (token, input) pairs kept. `workspace`: `workspaceBytes(rows:k:tileRows:)`, 64-byte aligned.
  @discardableResult
  public static func run(
    _ weight: Weight, rows: Int, k: Int, n: Int, x: UnsafePointer<Float>, thresholds: UnsafePointer<Float>,
    perRow: Bool, bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>, tileRows: Int,
    workspace: UnsafeMutableRawPointer, microkernel: Int? = nil, threads: Int = 1
  ) -> Int {
    var c = sparrow_gated_call()
    c.rows = rows
    c.k = k
    c.n = n
    c.x = x
    c.x_stride = k * 4
    c.thresholds = thresholds
    c.thresholds_stride = perRow ? 1 : 0
    c.ukernel = microkernel ?? Int.max  // past the list: the automatic choice
    c.bias = bias
    c.y = y
    c.y_stride = n * 4
    c.tile_rows = tileRows
    c.workspace = workspace
    c.threads = Int32(clamping: threads)
    switch weight {
    case .dense(let w):
      c.kind = SPARROW_GATE_DENSE
      c.w_stride = n * 4
      return w.withUnsafeBufferPointer { wb in
        c.w = wb.baseAddress
        return sparrow_gated_linear(&c)
      }
    case .csc(let ptr, let cols, let vals):
      c.kind = SPARROW_GATE_CSC
      return ptr.withUnsafeBufferPointer { pb in
        cols.withUnsafeBufferPointer { cb in
          vals.withUnsafeBufferPointer { vb in
            c.ptr = pb.baseAddress
            c.out_rows = cb.baseAddress
            c.vals = vb.baseAddress
            return sparrow_gated_linear(&c)
          }
        }
      }
    }
  }
}
