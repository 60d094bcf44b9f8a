/* GELU, tanh form, AVX2/FMA: x / (1 + e^{-2u}), 16 values a step, then 8, then a masked tail.
 * See rowwise.h. */
#if defined(__x86_64__)
#include "math-avx2.h"
#include "rowwise.h"

#define TARGET __attribute__((target("avx2,fma")))

SPARROW_AVX2 __m256 gelu8(__m256 v) {
  /* -2u = v (c0 + c1 v^2) with c0 = -2 sqrt(2/pi), c1 = c0 * 0.044715. */
  const __m256 v2 = _mm256_mul_ps(v, v);
  const __m256 t = _mm256_mul_ps(v, _mm256_fmadd_ps(v2, _mm256_set1_ps(-0.07135481627260025f),
                                                    _mm256_set1_ps(-1.5957691216057307f)));
  return _mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.0f), sparrow_exp8_avx2(t)));
}

TARGET void sparrow_gelu_tanh_f32_1x16__avx2(size_t n, const float* x, float* y) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 a = gelu8(_mm256_loadu_ps(x + i)), b = gelu8(_mm256_loadu_ps(x + i + 8));
    _mm256_storeu_ps(y + i, a);
    _mm256_storeu_ps(y + i + 8, b);
  }
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, gelu8(_mm256_loadu_ps(x + i)));
  if (i < n) {
    const __m256i tail = sparrow_tail_mask_avx2(n - i);
    _mm256_maskstore_ps(y + i, tail, gelu8(_mm256_maskload_ps(x + i, tail)));
  }
}
#endif
