/* Out-of-place float matrix transpose: dst[c * dst_stride + r] = src[r * src_stride + c] for
 * r < rows, c < cols (strides in elements). The scalar form works in 16x16 blocks; the AVX2 form
 * moves 8x8 blocks through registers (unpack, shuffle, 128-bit permute), the NEON form 4x4,
 * edges scalar. Code that runs under any ISA calls sparrow_transpose_f32 (sparrow_kernels.h),
 * which takes the active ISA's through the dispatcher. */
#ifndef SPARROW_TRANSPOSE_H
#define SPARROW_TRANSPOSE_H
#include <stddef.h>

typedef void (*sparrow_transpose_fn)(size_t rows, size_t cols, const float* src, size_t src_stride, float* dst,
                                     size_t dst_stride);
void sparrow_transpose_f32__scalar(size_t rows, size_t cols, const float* src, size_t src_stride, float* dst,
                                   size_t dst_stride);
#if defined(__x86_64__)
void sparrow_transpose_f32__avx2(size_t rows, size_t cols, const float* src, size_t src_stride, float* dst,
                                 size_t dst_stride);
#endif
#if defined(__aarch64__)
void sparrow_transpose_f32__neon(size_t rows, size_t cols, const float* src, size_t src_stride, float* dst,
                                 size_t dst_stride);
#endif
#endif
