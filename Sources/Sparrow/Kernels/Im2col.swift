internal import SparrowKernels

/// im2col for k x k convolutions (Kernels/conv/im2col.c): channels of one NCHW image unfolded
/// into rows `(c, ky, kx)` x columns `(oy, ox)`, zeros where the window reaches into padding.
/// The geometry is a `DepthwiseShape` (its multiplier is ignored), validated once here.
public struct Im2col: Sendable {
  public let shape: DepthwiseShape
  private let cShape: sparrow_dwconv_shape

  public init(_ shape: DepthwiseShape) throws(KernelError) {
    guard var s = shape.c else { throw KernelError(kind: .invalidArgument, message: "im2col shape has a negative size") }
    try check(sparrow_dwconv_check(&s), "im2col")
    self.shape = shape
    cShape = s
  }

  /// Unfolds channels `c0 ..< c0+count` of image `x` into `col` (`count*kh*kw` rows of `ho*wo`),
  /// or only output rows `rows` (rows of `rows.count*wo`); with `ld`, rows of `col` are `ld`
  /// floats apart (one image's columns of a batch unfolded side by side).
  func run(
    _ x: UnsafePointer<Float>, c0: Int, count: Int, rows: Range<Int>? = nil, into col: UnsafeMutablePointer<Float>,
    ld: Int? = nil
  ) {
    var s = cShape
    let r = rows ?? 0..<shape.ho
    sparrow_im2col_rows_ld(&s, x, c0, count, r.lowerBound, r.upperBound, col, ld ?? r.count * shape.wo)
  }

  /// The geometry as kernels read it, for `count` channels: kernels that read windows build
  /// their im2col panels from the image themselves (`sparrow_spmm_call.x_window`).
  func withWindow<R, E: Error>(channels count: Int, _ body: (UnsafePointer<sparrow_dwconv_shape>) throws(E) -> R) throws(E) -> R {
    var s = cShape
    s.channels = count
    return try withUnsafePointer(to: &s) { (p) throws(E) in try body(p) }
  }

  /// Array convenience (tests): all channels of one image.
  public func run(_ x: [Float]) throws(KernelError) -> [Float] {
    let s = shape
    guard x.count == s.channels * s.h * s.w else {
      throw KernelError(kind: .invalidArgument, message: "im2col: x has \(x.count) values, expected \(s.channels * s.h * s.w)")
    }
    var col = [Float](repeating: .nan, count: s.channels * s.kh * s.kw * s.ho * s.wo)
    x.withUnsafeBufferPointer { xb in
      col.withUnsafeMutableBufferPointer { run(xb.baseAddress!, c0: 0, count: s.channels, into: $0.baseAddress!) }
    }
    return col
  }
}
