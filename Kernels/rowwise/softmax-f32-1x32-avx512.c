/* Softmax of one row, AVX-512F: three passes (alpha * x + mask and its maximum; exp and the sum;
 * the scaling), 32 values a step, then 16, then a masked tail. See rowwise.h. */
#if defined(__x86_64__)
#include "math-avx512.h"
#include "rowwise.h"

#define TARGET __attribute__((target("avx512f,avx2,fma")))

TARGET void sparrow_softmax_f32_1x32__avx512f(size_t n, const float* x, float alpha, const float* mask, float* y) {
  const __m512 va = _mm512_set1_ps(alpha), ninf = _mm512_set1_ps(-__builtin_inff());
  __m512 m0 = ninf, m1 = ninf;
  size_t i = 0;
  if (mask != NULL) {
    for (; i + 32 <= n; i += 32) {
      const __m512 v0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), va, _mm512_loadu_ps(mask + i));
      const __m512 v1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), va, _mm512_loadu_ps(mask + i + 16));
      _mm512_storeu_ps(y + i, v0);
      _mm512_storeu_ps(y + i + 16, v1);
      m0 = _mm512_max_ps(m0, v0);
      m1 = _mm512_max_ps(m1, v1);
    }
    for (; i + 16 <= n; i += 16) {
      const __m512 v = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), va, _mm512_loadu_ps(mask + i));
      _mm512_storeu_ps(y + i, v);
      m0 = _mm512_max_ps(m0, v);
    }
  } else {
    for (; i + 32 <= n; i += 32) {
      const __m512 v0 = _mm512_mul_ps(_mm512_loadu_ps(x + i), va);
      const __m512 v1 = _mm512_mul_ps(_mm512_loadu_ps(x + i + 16), va);
      _mm512_storeu_ps(y + i, v0);
      _mm512_storeu_ps(y + i + 16, v1);
      m0 = _mm512_max_ps(m0, v0);
      m1 = _mm512_max_ps(m1, v1);
    }
    for (; i + 16 <= n; i += 16) {
      const __m512 v = _mm512_mul_ps(_mm512_loadu_ps(x + i), va);
      _mm512_storeu_ps(y + i, v);
      m0 = _mm512_max_ps(m0, v);
    }
  }
  const size_t rest = n - i;
  const __mmask16 tail = sparrow_tail_mask_avx512(rest);
  if (rest > 0) {
    __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, x + i), va);
    if (mask != NULL) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(tail, mask + i));
    _mm512_mask_storeu_ps(y + i, tail, v);
    m0 = _mm512_mask_max_ps(m0, tail, m0, v);
  }
  /* A NaN may or may not survive the maximum; either way it reaches the sum below. */
  const __m512 vm = _mm512_set1_ps(_mm512_reduce_max_ps(_mm512_max_ps(m0, m1)));

  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  for (i = 0; i + 32 <= n; i += 32) {
    const __m512 e0 = sparrow_exp16_avx512(_mm512_sub_ps(_mm512_loadu_ps(y + i), vm));
    const __m512 e1 = sparrow_exp16_avx512(_mm512_sub_ps(_mm512_loadu_ps(y + i + 16), vm));
    _mm512_storeu_ps(y + i, e0);
    _mm512_storeu_ps(y + i + 16, e1);
    s0 = _mm512_add_ps(s0, e0);
    s1 = _mm512_add_ps(s1, e1);
  }
  for (; i + 16 <= n; i += 16) {
    const __m512 e = sparrow_exp16_avx512(_mm512_sub_ps(_mm512_loadu_ps(y + i), vm));
    _mm512_storeu_ps(y + i, e);
    s0 = _mm512_add_ps(s0, e);
  }
  if (rest > 0) {
    const __m512 e = sparrow_exp16_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, y + i), vm));
    _mm512_mask_storeu_ps(y + i, tail, e);
    s1 = _mm512_mask_add_ps(s1, tail, s1, e);
  }
  const __m512 vs = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(_mm512_add_ps(s0, s1)));

  for (i = 0; i + 32 <= n; i += 32) {
    _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_loadu_ps(y + i), vs));
    _mm512_storeu_ps(y + i + 16, _mm512_mul_ps(_mm512_loadu_ps(y + i + 16), vs));
  }
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_loadu_ps(y + i), vs));
  if (rest > 0) _mm512_mask_storeu_ps(y + i, tail, _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, y + i), vs));
}
#endif
