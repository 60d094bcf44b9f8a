/* Input-gated dense K-major product, AVX-512F: as the AVX2 kernel (gatedk-dense-f32-4x8-avx2.c)
 * with 16 outputs a vector and the tail under a mask register (gate.h). */
#if defined(__x86_64__)
#include <immintrin.h>

#include "gate.h"

#define T __attribute__((target("avx512f,avx2,fma")))
#define ROW(j) ((const float*)((const char*)w + (size_t)idx[j] * w_stride))

T void sparrow_gatedk_dense_f32_4x16__avx512f(size_t rows, size_t n, size_t nk, const uint32_t* idx, const float* xv,
                                              const float* w, size_t w_stride, float* y, size_t y_stride) {
  for (size_t j = 0; j < nk; j += 4) {
    const size_t g = nk - j < 4 ? nk - j : 4;
    /* A short last group repeats its first row with a zero factor: one loop for every group. */
    const float* wr[4];
    __m512 xb[4][4];
    for (size_t q = 0; q < 4; q++) {
      wr[q] = ROW(j + (q < g ? q : 0));
      for (size_t t = 0; t < rows; t++) xb[t][q] = _mm512_set1_ps(q < g ? xv[(j + q) * rows + t] : 0.0f);
    }
    if (j + 4 < nk) {
      const size_t ahead = nk - j - 4 < 4 ? nk - j - 4 : 4;
      for (size_t q = 0; q < ahead; q++) _mm_prefetch((const char*)ROW(j + 4 + q), _MM_HINT_T0);
    }
    size_t o = 0;
    for (; o + 16 <= n; o += 16) {
      const __m512 v0 = _mm512_loadu_ps(wr[0] + o), v1 = _mm512_loadu_ps(wr[1] + o);
      const __m512 v2 = _mm512_loadu_ps(wr[2] + o), v3 = _mm512_loadu_ps(wr[3] + o);
      for (size_t t = 0; t < rows; t++) {
        float* yt = (float*)((char*)y + t * y_stride) + o;
        __m512 a = _mm512_fmadd_ps(xb[t][0], v0, _mm512_loadu_ps(yt));
        a = _mm512_fmadd_ps(xb[t][1], v1, a);
        a = _mm512_fmadd_ps(xb[t][2], v2, a);
        a = _mm512_fmadd_ps(xb[t][3], v3, a);
        _mm512_storeu_ps(yt, a);
      }
    }
    if (o < n) {
      const __mmask16 m = (__mmask16)((1u << (n - o)) - 1u);
      const __m512 v0 = _mm512_maskz_loadu_ps(m, wr[0] + o), v1 = _mm512_maskz_loadu_ps(m, wr[1] + o);
      const __m512 v2 = _mm512_maskz_loadu_ps(m, wr[2] + o), v3 = _mm512_maskz_loadu_ps(m, wr[3] + o);
      for (size_t t = 0; t < rows; t++) {
        float* yt = (float*)((char*)y + t * y_stride) + o;
        __m512 a = _mm512_fmadd_ps(xb[t][0], v0, _mm512_maskz_loadu_ps(m, yt));
        a = _mm512_fmadd_ps(xb[t][1], v1, a);
        a = _mm512_fmadd_ps(xb[t][2], v2, a);
        a = _mm512_fmadd_ps(xb[t][3], v3, a);
        _mm512_mask_storeu_ps(yt, m, a);
      }
    }
  }
}
#endif
