/* GELU, erf form, AVX-512F: 32 values a step, then 16, then a masked tail. See rowwise.h. */
#if defined(__x86_64__)
#include "math-avx512.h"
#include "rowwise.h"

#define TARGET __attribute__((target("avx512f,avx2,fma")))

SPARROW_AVX512 __m512 gelu16(__m512 v) {
  const __m512 h = _mm512_mul_ps(v, _mm512_set1_ps(0.5f));
  return _mm512_fmadd_ps(h, sparrow_erf16_avx512(_mm512_mul_ps(v, _mm512_set1_ps(0.70710678118654752f))), h);
}

TARGET void sparrow_gelu_erf_f32_1x32__avx512f(size_t n, const float* x, float* y) {
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 a = gelu16(_mm512_loadu_ps(x + i)), b = gelu16(_mm512_loadu_ps(x + i + 16));
    _mm512_storeu_ps(y + i, a);
    _mm512_storeu_ps(y + i + 16, b);
  }
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, gelu16(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 tail = sparrow_tail_mask_avx512(n - i);
    _mm512_mask_storeu_ps(y + i, tail, gelu16(_mm512_maskz_loadu_ps(tail, x + i)));
  }
}
#endif
