/* Gathered GEMM, AVX2/FMA (gate.h, kind ROWS): 4 listed rows x 16 columns, 8 accumulators; per
 * kept column two aligned X loads and four broadcasts straight from the rows of W (no packed
 * copy: the rows are whichever the gate kept). Fewer than 4 rows repeat row 0 and drop it. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "gate.h"

#define T __attribute__((target("avx2,fma")))

static inline T __m256 finish8(__m256 acc, const float* yr, __m256i m, int first, int last, float b, float s, __m256 lo,
                               __m256 hi, int scaled) {
  __m256 v = first ? acc : _mm256_add_ps(acc, _mm256_maskload_ps(yr, m));
  if (last) {
    v = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(v, _mm256_set1_ps(b)), lo), hi);
    if (scaled) v = _mm256_mul_ps(v, _mm256_set1_ps(s));
  }
  return v;
}

T void sparrow_gatherk_rows_f32_4x16__avx2(size_t rows, const float* const* w, size_t runs, const uint32_t* run_k,
                                           const uint32_t* run_len, const float* xp, size_t cols, float* const* y,
                                           const float* bias, const float* scale, float lo, float hi, int first,
                                           int last) {
  const float* w0 = w[0];
  const float* w1 = rows > 1 ? w[1] : w0;
  const float* w2 = rows > 2 ? w[2] : w0;
  const float* w3 = rows > 3 ? w[3] : w0;
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  const float* xr = xp;
  for (size_t q = 0; q < runs; q++) {
    const size_t k0 = run_k[q], len = run_len[q];
    const float *a0 = w0 + k0, *a1 = w1 + k0, *a2 = w2 + k0, *a3 = w3 + k0;
    for (size_t t = 0; t < len; t++, xr += SPARROW_GATHER_NR) {
      const __m256 x0 = _mm256_load_ps(xr), x1 = _mm256_load_ps(xr + 8);
      __m256 b = _mm256_broadcast_ss(a0 + t);
      c00 = _mm256_fmadd_ps(b, x0, c00), c01 = _mm256_fmadd_ps(b, x1, c01);
      b = _mm256_broadcast_ss(a1 + t);
      c10 = _mm256_fmadd_ps(b, x0, c10), c11 = _mm256_fmadd_ps(b, x1, c11);
      b = _mm256_broadcast_ss(a2 + t);
      c20 = _mm256_fmadd_ps(b, x0, c20), c21 = _mm256_fmadd_ps(b, x1, c21);
      b = _mm256_broadcast_ss(a3 + t);
      c30 = _mm256_fmadd_ps(b, x0, c30), c31 = _mm256_fmadd_ps(b, x1, c31);
    }
  }
  const __m256 c[8] = {c00, c01, c10, c11, c20, c21, c30, c31};
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(cols < 8 ? cols : 8)), lanes);
  const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(cols > 8 ? cols - 8 : 0)), lanes);
  const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
  for (size_t i = 0; i < rows; i++) {
    float* yr = y[i];
    const float b = bias != NULL ? bias[i] : 0.0f, s = scale != NULL ? scale[i] : 1.0f;
    _mm256_maskstore_ps(yr, m0, finish8(c[i * 2], yr, m0, first, last, b, s, vlo, vhi, scale != NULL));
    if (cols > 8)
      _mm256_maskstore_ps(yr + 8, m1, finish8(c[i * 2 + 1], yr + 8, m1, first, last, b, s, vlo, vhi, scale != NULL));
  }
}
#endif
