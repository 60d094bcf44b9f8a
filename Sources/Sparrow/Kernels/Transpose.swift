internal import SparrowKernels

/// Out-of-place matrix transpose: the C kernel of the active ISA (Kernels/common/transpose.c:
/// AVX2 8x8 and NEON 4x4 register blocks). The sparse linear layers transpose their tokens in
/// and their output back: in Swift (scalar, 16x16 blocks) that was most of what a 90%-sparse
/// MiniLM layer spent outside its kernel (about 0.5 of 1.1 ms at 128 tokens).
enum Transpose {
  /// `dst[c * rows + r] = src[r * cols + c]`, on up to `threads` threads (bands of columns;
  /// one thread for small matrices).
  static func blocked(
    _ src: UnsafePointer<Float>, rows: Int, cols: Int, into dst: UnsafeMutablePointer<Float>, threads: Int = 1
  ) {
    guard rows > 0, cols > 0 else { return }
    sparrow_transpose_f32_threads(rows, cols, src, cols, dst, rows, Int32(clamping: threads))
  }
}
