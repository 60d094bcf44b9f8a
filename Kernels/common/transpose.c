/* Matrix transposes (transpose.h): scalar, AVX2 8x8 and NEON 4x4 blocks. */
#include "transpose.h"

#include "../dispatch/dispatch.h"
#include "common.h"
#include "sparrow_kernels.h"

/* Rows [r0, r1) x columns [c0, c1), one value at a time. */
static void edge(size_t r0, size_t r1, size_t c0, size_t c1, const float* src, size_t ss, float* dst, size_t ds) {
  for (size_t r = r0; r < r1; r++)
    for (size_t c = c0; c < c1; c++) dst[c * ds + r] = src[r * ss + c];
}

void sparrow_transpose_f32__scalar(size_t rows, size_t cols, const float* src, size_t ss, float* dst, size_t ds) {
  for (size_t r0 = 0; r0 < rows; r0 += 16)
    for (size_t c0 = 0; c0 < cols; c0 += 16)
      edge(r0, r0 + 16 < rows ? r0 + 16 : rows, c0, c0 + 16 < cols ? c0 + 16 : cols, src, ss, dst, ds);
}

#if defined(__x86_64__)
#include <immintrin.h>

#define TARGET __attribute__((target("avx2,fma")))

TARGET static inline void block8(const float* s, size_t ss, float* d, size_t ds) {
  const __m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + ss), r2 = _mm256_loadu_ps(s + 2 * ss),
               r3 = _mm256_loadu_ps(s + 3 * ss), r4 = _mm256_loadu_ps(s + 4 * ss), r5 = _mm256_loadu_ps(s + 5 * ss),
               r6 = _mm256_loadu_ps(s + 6 * ss), r7 = _mm256_loadu_ps(s + 7 * ss);
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3),
               t3 = _mm256_unpackhi_ps(r2, r3), t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
               t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)), u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2)),
               u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)), u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2)),
               u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0)), u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2)),
               u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0)), u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
  _mm256_storeu_ps(d, _mm256_permute2f128_ps(u0, u4, 0x20));
  _mm256_storeu_ps(d + ds, _mm256_permute2f128_ps(u1, u5, 0x20));
  _mm256_storeu_ps(d + 2 * ds, _mm256_permute2f128_ps(u2, u6, 0x20));
  _mm256_storeu_ps(d + 3 * ds, _mm256_permute2f128_ps(u3, u7, 0x20));
  _mm256_storeu_ps(d + 4 * ds, _mm256_permute2f128_ps(u0, u4, 0x31));
  _mm256_storeu_ps(d + 5 * ds, _mm256_permute2f128_ps(u1, u5, 0x31));
  _mm256_storeu_ps(d + 6 * ds, _mm256_permute2f128_ps(u2, u6, 0x31));
  _mm256_storeu_ps(d + 7 * ds, _mm256_permute2f128_ps(u3, u7, 0x31));
}

/* Two loop orders. A destination stride of 2 KiB or more maps a 32x32 tile's destination rows
 * onto a few cache sets (a 6 KiB stride: two sets), which thrash L1; there bands of 16 source
 * rows walk the columns, each step writing two 8x8 blocks side by side, so each of the 8
 * destination rows gets one whole 64-byte line at once and no line is revisited. Otherwise
 * 32x32 tiles of 8x8 blocks (a tile's source and destination rows stay in L1). */
TARGET void sparrow_transpose_f32__avx2(size_t rows, size_t cols, const float* src, size_t ss, float* dst, size_t ds) {
  const size_t r8 = rows & ~(size_t)7, c8 = cols & ~(size_t)7;
  size_t rb = 0;
  if (ds >= 512) {
    for (; rb + 16 <= r8; rb += 16)
      for (size_t c = 0; c < c8; c += 8) {
        block8(src + rb * ss + c, ss, dst + c * ds + rb, ds);
        block8(src + (rb + 8) * ss + c, ss, dst + c * ds + rb + 8, ds);
      }
  }
  for (size_t r0 = rb; r0 < r8; r0 += 32)
    for (size_t c0 = 0; c0 < c8; c0 += 32) {
      const size_t r1 = r0 + 32 < r8 ? r0 + 32 : r8, c1 = c0 + 32 < c8 ? c0 + 32 : c8;
      for (size_t r = r0; r < r1; r += 8)
        for (size_t c = c0; c < c1; c += 8) block8(src + r * ss + c, ss, dst + c * ds + r, ds);
    }
  edge(0, r8, c8, cols, src, ss, dst, ds);
  edge(r8, rows, 0, cols, src, ss, dst, ds);
}
#endif

#if defined(__aarch64__)
#include <arm_neon.h>

static inline void block4(const float* s, size_t ss, float* d, size_t ds) {
  const float32x4_t r0 = vld1q_f32(s), r1 = vld1q_f32(s + ss), r2 = vld1q_f32(s + 2 * ss), r3 = vld1q_f32(s + 3 * ss);
  const float32x4_t t0 = vtrn1q_f32(r0, r1), t1 = vtrn2q_f32(r0, r1), t2 = vtrn1q_f32(r2, r3), t3 = vtrn2q_f32(r2, r3);
  vst1q_f32(d, vreinterpretq_f32_f64(vtrn1q_f64(vreinterpretq_f64_f32(t0), vreinterpretq_f64_f32(t2))));
  vst1q_f32(d + ds, vreinterpretq_f32_f64(vtrn1q_f64(vreinterpretq_f64_f32(t1), vreinterpretq_f64_f32(t3))));
  vst1q_f32(d + 2 * ds, vreinterpretq_f32_f64(vtrn2q_f64(vreinterpretq_f64_f32(t0), vreinterpretq_f64_f32(t2))));
  vst1q_f32(d + 3 * ds, vreinterpretq_f32_f64(vtrn2q_f64(vreinterpretq_f64_f32(t1), vreinterpretq_f64_f32(t3))));
}

void sparrow_transpose_f32__neon(size_t rows, size_t cols, const float* src, size_t ss, float* dst, size_t ds) {
  const size_t r4 = rows & ~(size_t)3, c4 = cols & ~(size_t)3;
  for (size_t r0 = 0; r0 < r4; r0 += 16)
    for (size_t c0 = 0; c0 < c4; c0 += 16) {
      const size_t r1 = r0 + 16 < r4 ? r0 + 16 : r4, c1 = c0 + 16 < c4 ? c0 + 16 : c4;
      for (size_t r = r0; r < r1; r += 4)
        for (size_t c = c0; c < c1; c += 4) block4(src + r * ss + c, ss, dst + c * ds + r, ds);
    }
  edge(0, r4, c4, cols, src, ss, dst, ds);
  edge(r4, rows, 0, cols, src, ss, dst, ds);
}
#endif

void sparrow_transpose_f32(size_t rows, size_t cols, const float* src, size_t src_stride, float* dst,
                           size_t dst_stride) {
  sparrow_dispatch_transpose()(rows, cols, src, src_stride, dst, dst_stride);
}

/* Threads take bands of source columns: whole rows of the destination each, so no two write
 * the same cache line but at a band's ends (bands are multiples of 16 floats). */
typedef struct {
  size_t rows, cols, ss, ds, band;
  const float* src;
  float* dst;
} transpose_call;

static void transpose_task(void* context, size_t t) {
  const transpose_call* c = context;
  const size_t c0 = t * c->band, c1 = c0 + c->band < c->cols ? c0 + c->band : c->cols;
  if (c0 < c1) sparrow_dispatch_transpose()(c->rows, c1 - c0, c->src + c0, c->ss, c->dst + c0 * c->ds, c->ds);
}

void sparrow_transpose_f32_threads(size_t rows, size_t cols, const float* src, size_t src_stride, float* dst,
                                   size_t dst_stride, int threads) {
  if (threads <= 1 || rows * cols < SPARROW_TRANSPOSE_MT_MIN || cols < 32) {
    sparrow_transpose_f32(rows, cols, src, src_stride, dst, dst_stride);
    return;
  }
  const size_t band = sparrow_div_up(sparrow_div_up(cols, (size_t)threads), 16) * 16;
  transpose_call c = {rows, cols, src_stride, dst_stride, band, src, dst};
  sparrow_parallel_for(sparrow_div_up(cols, band), threads, transpose_task, &c);
}
