internal import SparrowKernels

/// How a weight matrix is stored for the multiply.
public enum WeightFormat: Sendable, Hashable, CustomStringConvertible {
  /// OpenBLAS sgemm on the full matrix.
  case dense
  /// Unstructured sparsity: compressed sparse rows.
  case csr
  /// `n` nonzeros in every group of `m` columns. `groupStride` 1 groups consecutive columns
  /// (ONNX's flattened `(Cin, kh, kw)` order); `kh*kw` groups along input channels.
  case nm(n: Int, m: Int, groupStride: Int = 1)
  /// Dense `rows x cols` blocks.
  case bsr(rows: Int, cols: Int)
  /// All-zero rows and columns removed: a smaller dense matrix.
  case channel
  /// Sparrow's own dense kernels: the whole matrix packed once into row panels
  /// (Kernels/dense/gemm), a candidate beside OpenBLAS's `dense`.
  case packed

  public enum Kind: String, Sendable, Hashable, CaseIterable {
    case dense, csr, nm, bsr, channel, packed
    init(_ f: sparrow_format) {
      switch f {
      case SPARROW_FORMAT_CSR: self = .csr
      case SPARROW_FORMAT_NM: self = .nm
      case SPARROW_FORMAT_BSR: self = .bsr
      case SPARROW_FORMAT_CHANNEL: self = .channel
      case SPARROW_FORMAT_GEMM: self = .packed
      default: self = .dense
      }
    }
  }

  public var kind: Kind {
    switch self {
    case .dense: return .dense
    case .csr: return .csr
    case .nm: return .nm
    case .bsr: return .bsr
    case .channel: return .channel
    case .packed: return .packed
    }
  }

  public var description: String {
    switch self {
    case .dense: return "dense"
    case .csr: return "csr"
    case .nm(let n, let m, let s): return s == 1 ? "\(n):\(m)" : "\(n):\(m)/stride\(s)"
    case .bsr(let r, let c): return "bsr\(r)x\(c)"
    case .channel: return "channel"
    case .packed: return "packed"
    }
  }

  var c: (sparrow_format, sparrow_pack_params) {
    var p = sparrow_pack_params()
    switch self {
    case .dense: return (SPARROW_FORMAT_DENSE, p)
    case .csr: return (SPARROW_FORMAT_CSR, p)
    case .channel: return (SPARROW_FORMAT_CHANNEL, p)
    case .packed: return (SPARROW_FORMAT_GEMM, p)
    case .nm(let n, let m, let s):
      p.nm_n = UInt32(clamping: n)
      p.nm_m = UInt32(clamping: m)
      p.nm_group_stride = UInt32(clamping: s)
      return (SPARROW_FORMAT_NM, p)
    case .bsr(let r, let c):
      p.block_rows = UInt32(clamping: r)
      p.block_cols = UInt32(clamping: c)
      return (SPARROW_FORMAT_BSR, p)
    }
  }
}

/// A weight matrix `W` (`rows x cols`, i.e. `M x K`) packed once into one format. Immutable
/// and safe to share between threads.
public final class PackedMatrix: @unchecked Sendable {
  let handle: OpaquePointer
  /// M and K.
  public let rows: Int, cols: Int
  /// The format it was packed into.
  public let format: WeightFormat

  private init(handle: OpaquePointer, rows: Int, cols: Int, format: WeightFormat) {
    self.handle = handle
    self.rows = rows
    self.cols = cols
    self.format = format
  }

  deinit { sparrow_matrix_free(handle) }

  /// Packs a dense row-major `rows x cols` matrix whose zeros are dropped.
  public convenience init(dense: [Float], rows: Int, cols: Int, format: WeightFormat) throws(KernelError) {
    guard rows > 0, cols > 0, dense.count == rows * cols else {
      throw KernelError(
        kind: .invalidArgument, message: "dense matrix has \(dense.count) values, expected \(rows) x \(cols)")
    }
    let (f, params) = format.c
    var out: OpaquePointer?
    let status = dense.withUnsafeBufferPointer { buf in
      withUnsafePointer(to: params) { sparrow_pack(buf.baseAddress, rows, cols, f, $0, &out) }
    }
    try check(status, "packing \(rows)x\(cols) as \(format)")
    guard let handle = out else { throw KernelError(kind: .unknown, message: "packer returned no matrix") }
    self.init(handle: handle, rows: rows, cols: cols, format: format)
  }

  /// Imports externally supplied CSR (e.g. an ONNX `sparse_initializer`); every index is
  /// validated. Columns within a row may come in any order.
  public static func csr(
    rows: Int, cols: Int, rowPointers: [Int64], columnIndices: [Int64], values: [Float]
  ) throws(KernelError) -> PackedMatrix {
    guard rowPointers.count == rows + 1, columnIndices.count == values.count else {
      throw KernelError(
        kind: .malformed,
        message: "CSR: \(rowPointers.count) row pointers for \(rows) rows, \(columnIndices.count) indices for \(values.count) values")
    }
    var out: OpaquePointer?
    let status = sparrow_import_csr(rows, cols, rowPointers, columnIndices, values, values.count, &out)
    try check(status, "importing CSR \(rows)x\(cols)")
    guard let handle = out else { throw KernelError(kind: .unknown, message: "importer returned no matrix") }
    return PackedMatrix(handle: handle, rows: rows, cols: cols, format: .csr)
  }

  /// Imports N:M data: `values` and in-group `indices`, `[rows][groups][n]` each.
  public static func nm(
    rows: Int, cols: Int, n: Int, m: Int, groupStride: Int = 1, values: [Float], indices: [UInt8]
  ) throws(KernelError) -> PackedMatrix {
    let format = WeightFormat.nm(n: n, m: m, groupStride: groupStride)
    let (_, params) = format.c
    guard n > 0, m > 0, groupStride > 0, values.count == indices.count, values.count % (rows * n) == 0 else {
      throw KernelError(kind: .malformed, message: "N:M: \(values.count) values, \(indices.count) indices")
    }
    let groups = groupStride == 1 ? (cols + m - 1) / m : cols / m
    guard values.count == rows * groups * n else {
      throw KernelError(
        kind: .malformed, message: "N:M: \(values.count) values, expected \(rows) x \(groups) groups x \(n)")
    }
    var out: OpaquePointer?
    let status = withUnsafePointer(to: params) { sparrow_import_nm(rows, cols, $0, values, indices, &out) }
    try check(status, "importing \(format) \(rows)x\(cols)")
    guard let handle = out else { throw KernelError(kind: .unknown, message: "importer returned no matrix") }
    return PackedMatrix(handle: handle, rows: rows, cols: cols, format: format)
  }

  /// Imports block-sparse rows: `values` is `[blocks][blockRows][blockCols]`.
  public static func bsr(
    rows: Int, cols: Int, blockRows: Int, blockCols: Int, blockRowPointers: [Int64], blockColumns: [Int64],
    values: [Float]
  ) throws(KernelError) -> PackedMatrix {
    guard blockRows > 0, blockCols > 0, values.count == blockColumns.count * blockRows * blockCols,
      blockRowPointers.count == (rows + blockRows - 1) / blockRows + 1
    else {
      throw KernelError(kind: .malformed, message: "BSR: array sizes do not match \(blockRows)x\(blockCols) blocks")
    }
    var out: OpaquePointer?
    let status = sparrow_import_bsr(
      rows, cols, blockRows, blockCols, blockRowPointers, blockColumns, values, blockColumns.count, &out)
    try check(status, "importing BSR \(rows)x\(cols)")
    guard let handle = out else { throw KernelError(kind: .unknown, message: "importer returned no matrix") }
    return PackedMatrix(handle: handle, rows: rows, cols: cols, format: .bsr(rows: blockRows, cols: blockCols))
  }

  private var info: sparrow_matrix_info {
    var i = sparrow_matrix_info()
    sparrow_matrix_get_info(handle, &i)
    return i
  }

  /// Bytes the packed form holds (values, indices, pointers).
  public var packedBytes: Int { info.packed_bytes }
  /// Values stored, padding zeros of N:M groups and BSR blocks included.
  public var storedValues: Int { info.nnz }
  /// CSR column index width in bits (16 or 32); 0 for other formats.
  public var indexBits: Int { Int(info.index_bits) }
  /// N:M: the rows per block that share one pattern (the packer detects it; the kernels listed
  /// with that many block rows need it), else 0.
  public var nmSharedRows: Int { Int(info.nm_shared_rows) }
  /// CHANNEL: the compact matrix kept (rows, cols); other formats: the full size.
  public var keptShape: (rows: Int, cols: Int) { (info.kept_rows, info.kept_cols) }
  /// The kernel bound to this matrix when it was packed (under the ISA then in force), or forced.
  public var kernelName: String { String(cString: sparrow_kernel_name(handle)) }
  /// Whether its kernel builds im2col panels from the image itself (no unfolded copy).
  var readsWindow: Bool { sparrow_spmm_reads_window(handle) != 0 }

  /// The matrix as dense row-major values.
  public func toDense() -> [Float] {
    [Float](unsafeUninitializedCapacity: rows * cols) { buf, n in
      sparrow_matrix_to_dense(handle, buf.baseAddress)
      n = rows * cols
    }
  }

  /// Binds one kernel from `MicroKernel.all` (nil: back to the automatic choice). Not while
  /// another thread multiplies by this matrix.
  public func force(kernel: MicroKernel?) throws(KernelError) {
    try check(sparrow_matrix_force_kernel(handle, kernel.map { $0.index } ?? -1 /* SIZE_MAX */), "forcing a kernel")
  }
}
