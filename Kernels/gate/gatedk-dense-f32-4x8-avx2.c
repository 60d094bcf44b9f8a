/* Input-gated dense K-major product, AVX2/FMA: kept weight rows four at a time; per 8 outputs
 * the four rows' vectors are loaded once and added into every token's output (gate.h); the
 * output tail uses masked loads and stores. Rows are read front to back, so the hardware
 * prefetchers stream them, and a group's next rows are prefetched while this one runs. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "gate.h"

#define T __attribute__((target("avx2,fma")))
#define ROW(j) ((const float*)((const char*)w + (size_t)idx[j] * w_stride))

T static inline __m256i tail_mask(size_t left) {
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)left), lanes);
}

T void sparrow_gatedk_dense_f32_4x8__avx2(size_t rows, size_t n, size_t nk, const uint32_t* idx, const float* xv,
                                          const float* w, size_t w_stride, float* y, size_t y_stride) {
  for (size_t j = 0; j < nk; j += 4) {
    const size_t g = nk - j < 4 ? nk - j : 4;
    /* A short last group repeats its first row with a zero factor: one loop for every group. */
    const float* wr[4];
    __m256 xb[4][4];
    for (size_t q = 0; q < 4; q++) {
      wr[q] = ROW(j + (q < g ? q : 0));
      for (size_t t = 0; t < rows; t++) xb[t][q] = _mm256_set1_ps(q < g ? xv[(j + q) * rows + t] : 0.0f);
    }
    if (j + 4 < nk) {
      const size_t ahead = nk - j - 4 < 4 ? nk - j - 4 : 4;
      for (size_t q = 0; q < ahead; q++) _mm_prefetch((const char*)ROW(j + 4 + q), _MM_HINT_T0);
    }
    size_t o = 0;
    for (; o + 8 <= n; o += 8) {
      const __m256 v0 = _mm256_loadu_ps(wr[0] + o), v1 = _mm256_loadu_ps(wr[1] + o);
      const __m256 v2 = _mm256_loadu_ps(wr[2] + o), v3 = _mm256_loadu_ps(wr[3] + o);
      for (size_t t = 0; t < rows; t++) {
        float* yt = (float*)((char*)y + t * y_stride) + o;
        __m256 a = _mm256_fmadd_ps(xb[t][0], v0, _mm256_loadu_ps(yt));
        a = _mm256_fmadd_ps(xb[t][1], v1, a);
        a = _mm256_fmadd_ps(xb[t][2], v2, a);
        a = _mm256_fmadd_ps(xb[t][3], v3, a);
        _mm256_storeu_ps(yt, a);
      }
    }
    if (o < n) {
      const __m256i m = tail_mask(n - o);
      const __m256 v0 = _mm256_maskload_ps(wr[0] + o, m), v1 = _mm256_maskload_ps(wr[1] + o, m);
      const __m256 v2 = _mm256_maskload_ps(wr[2] + o, m), v3 = _mm256_maskload_ps(wr[3] + o, m);
      for (size_t t = 0; t < rows; t++) {
        float* yt = (float*)((char*)y + t * y_stride) + o;
        __m256 a = _mm256_fmadd_ps(xb[t][0], v0, _mm256_maskload_ps(yt, m));
        a = _mm256_fmadd_ps(xb[t][1], v1, a);
        a = _mm256_fmadd_ps(xb[t][2], v2, a);
        a = _mm256_fmadd_ps(xb[t][3], v3, a);
        _mm256_maskstore_ps(yt, m, a);
      }
    }
  }
}
#endif
