/* GELU, tanh form, AVX-512F: x / (1 + e^{-2u}), 32 values a step, then 16, then a masked tail.
 * See rowwise.h. */
#if defined(__x86_64__)
#include "math-avx512.h"
#include "rowwise.h"

#define TARGET __attribute__((target("avx512f,avx2,fma")))

SPARROW_AVX512 __m512 gelu16(__m512 v) {
  /* -2u = v (c0 + c1 v^2) with c0 = -2 sqrt(2/pi), c1 = c0 * 0.044715. */
  const __m512 v2 = _mm512_mul_ps(v, v);
  const __m512 t = _mm512_mul_ps(
      v, _mm512_fmadd_ps(v2, _mm512_set1_ps(-0.07135481627260025f), _mm512_set1_ps(-1.5957691216057307f)));
  return _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0f), sparrow_exp16_avx512(t)));
}

TARGET void sparrow_gelu_tanh_f32_1x32__avx512f(size_t n, const float* x, float* y) {
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
