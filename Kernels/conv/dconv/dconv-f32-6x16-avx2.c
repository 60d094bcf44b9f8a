/* Dense direct convolution, AVX2/FMA: 6 output channels x 16 pixels per block (dconv.h), the
 * packed GEMM's register block (12 accumulators; per k two 8-float loads of the input run and
 * six weight broadcasts) reading the padded planes in place; an 8-pixel block for the rest,
 * masked stores at the end of the row. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "dconv.h"

#define T __attribute__((target("avx2,fma")))

static inline T __m256 clamp8(__m256 v, float b, __m256 lo, __m256 hi) {
  return _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(v, _mm256_set1_ps(b)), lo), hi);
}

/* NV = 2: 16 pixels; NV = 1: 8. The sums start at c[] (zeros, or the partial sums of earlier K
 * slices). Loads are whole vectors: past the end of a row they read the next row's (or the
 * workspace's slack) values, whose lanes are never stored (dconv.h). */
#define DBLOCK(NAME, NV)                                                                                   \
  static inline T void NAME(size_t K, const float* wp, const size_t* koff, const float* x, __m256 c[12]) { \
    __m256 c00 = c[0], c01 = c[1], c10 = c[2], c11 = c[3], c20 = c[4], c21 = c[5];                         \
    __m256 c30 = c[6], c31 = c[7], c40 = c[8], c41 = c[9], c50 = c[10], c51 = c[11];                       \
    for (size_t k = 0; k < K; k++) {                                                                       \
      const float* xr = x + koff[k];                                                                       \
      const float* wk = wp + k * SPARROW_DCONV_MR;                                                         \
      const __m256 x0 = _mm256_loadu_ps(xr);                                                               \
      const __m256 x1 = (NV) == 2 ? _mm256_loadu_ps(xr + 8) : x0;                                          \
      __m256 b = _mm256_broadcast_ss(wk + 0);                                                              \
      c00 = _mm256_fmadd_ps(b, x0, c00);                                                                   \
      if ((NV) == 2) c01 = _mm256_fmadd_ps(b, x1, c01);                                                    \
      b = _mm256_broadcast_ss(wk + 1);                                                                     \
      c10 = _mm256_fmadd_ps(b, x0, c10);                                                                   \
      if ((NV) == 2) c11 = _mm256_fmadd_ps(b, x1, c11);                                                    \
      b = _mm256_broadcast_ss(wk + 2);                                                                     \
      c20 = _mm256_fmadd_ps(b, x0, c20);                                                                   \
      if ((NV) == 2) c21 = _mm256_fmadd_ps(b, x1, c21);                                                    \
      b = _mm256_broadcast_ss(wk + 3);                                                                     \
      c30 = _mm256_fmadd_ps(b, x0, c30);                                                                   \
      if ((NV) == 2) c31 = _mm256_fmadd_ps(b, x1, c31);                                                    \
      b = _mm256_broadcast_ss(wk + 4);                                                                     \
      c40 = _mm256_fmadd_ps(b, x0, c40);                                                                   \
      if ((NV) == 2) c41 = _mm256_fmadd_ps(b, x1, c41);                                                    \
      b = _mm256_broadcast_ss(wk + 5);                                                                     \
      c50 = _mm256_fmadd_ps(b, x0, c50);                                                                   \
      if ((NV) == 2) c51 = _mm256_fmadd_ps(b, x1, c51);                                                    \
    }                                                                                                      \
    c[0] = c00, c[1] = c01, c[2] = c10, c[3] = c11, c[4] = c20, c[5] = c21;                                \
    c[6] = c30, c[7] = c31, c[8] = c40, c[9] = c41, c[10] = c50, c[11] = c51;                              \
  }
DBLOCK(block16, 2)
DBLOCK(block8, 1)

T void sparrow_dconv_f32_6x16__avx2(size_t K, const float* wp, const size_t* koff, const float* row, size_t wo,
                                    size_t rows, const float* bias, float lo, float hi, float* y, size_t y_plane,
                                    int first, int last) {
  const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (size_t ox = 0; ox < wo; ox += 16) {
    const size_t cols = wo - ox < 16 ? wo - ox : 16;
    const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(cols < 8 ? cols : 8)), lanes);
    const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(cols > 8 ? cols - 8 : 0)), lanes);
    __m256 c[12];
    for (size_t i = 0; i < 12; i++) c[i] = _mm256_setzero_ps();
    if (!first)
      for (size_t i = 0; i < rows; i++) {
        const float* yr = y + i * y_plane + ox;
        c[2 * i] = cols >= 8 ? _mm256_loadu_ps(yr) : _mm256_maskload_ps(yr, m0);
        if (cols > 8) c[2 * i + 1] = cols == 16 ? _mm256_loadu_ps(yr + 8) : _mm256_maskload_ps(yr + 8, m1);
      }
    if (cols > 8)
      block16(K, wp, koff, row + ox, c);
    else
      block8(K, wp, koff, row + ox, c);
    for (size_t i = 0; i < rows; i++) {
      float* yr = y + i * y_plane + ox;
      const float b = bias != NULL ? bias[i] : 0.0f;
      const __m256 v0 = last ? clamp8(c[2 * i], b, vlo, vhi) : c[2 * i];
      const __m256 v1 = last ? clamp8(c[2 * i + 1], b, vlo, vhi) : c[2 * i + 1];
      if (cols == 16) {
        _mm256_storeu_ps(yr, v0);
        _mm256_storeu_ps(yr + 8, v1);
      } else if (cols > 8) {
        _mm256_storeu_ps(yr, v0);
        _mm256_maskstore_ps(yr + 8, m1, v1);
      } else if (cols == 8) {
        _mm256_storeu_ps(yr, v0);
      } else {
        _mm256_maskstore_ps(yr, m0, v0);
      }
    }
  }
}
#endif
