/* Softmax of one row, AVX2/FMA: three passes (alpha * x + mask and its maximum; exp and the
 * sum; the scaling), 16 values a step, then 8, then a masked tail. See rowwise.h. */
#if defined(__x86_64__)
#include "math-avx2.h"
#include "rowwise.h"

#define TARGET __attribute__((target("avx2,fma")))

TARGET void sparrow_softmax_f32_1x16__avx2(size_t n, const float* x, float alpha, const float* mask, float* y) {
  const __m256 va = _mm256_set1_ps(alpha), ninf = _mm256_set1_ps(-__builtin_inff());
  __m256 m0 = ninf, m1 = ninf;
  size_t i = 0;
  if (mask != NULL) {
    for (; i + 16 <= n; i += 16) {
      const __m256 v0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), va, _mm256_loadu_ps(mask + i));
      const __m256 v1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), va, _mm256_loadu_ps(mask + i + 8));
      _mm256_storeu_ps(y + i, v0);
      _mm256_storeu_ps(y + i + 8, v1);
      m0 = _mm256_max_ps(m0, v0);
      m1 = _mm256_max_ps(m1, v1);
    }
    for (; i + 8 <= n; i += 8) {
      const __m256 v = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), va, _mm256_loadu_ps(mask + i));
      _mm256_storeu_ps(y + i, v);
      m0 = _mm256_max_ps(m0, v);
    }
  } else {
    for (; i + 16 <= n; i += 16) {
      const __m256 v0 = _mm256_mul_ps(_mm256_loadu_ps(x + i), va);
      const __m256 v1 = _mm256_mul_ps(_mm256_loadu_ps(x + i + 8), va);
      _mm256_storeu_ps(y + i, v0);
      _mm256_storeu_ps(y + i + 8, v1);
      m0 = _mm256_max_ps(m0, v0);
      m1 = _mm256_max_ps(m1, v1);
    }
    for (; i + 8 <= n; i += 8) {
      const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), va);
      _mm256_storeu_ps(y + i, v);
      m0 = _mm256_max_ps(m0, v);
    }
  }
  const size_t rest = n - i;
  const __m256i tail = sparrow_tail_mask_avx2(rest);
  if (rest > 0) {
    __m256 v = _mm256_mul_ps(_mm256_maskload_ps(x + i, tail), va);
    if (mask != NULL) v = _mm256_add_ps(v, _mm256_maskload_ps(mask + i, tail));
    _mm256_maskstore_ps(y + i, tail, v);
    m0 = _mm256_max_ps(m0, _mm256_blendv_ps(ninf, v, _mm256_castsi256_ps(tail)));
  }
  /* A NaN may or may not survive the maximum; either way it reaches the sum below. */
  const __m256 vm = _mm256_set1_ps(sparrow_hmax8_avx2(_mm256_max_ps(m0, m1)));

  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  for (i = 0; i + 16 <= n; i += 16) {
    const __m256 e0 = sparrow_exp8_avx2(_mm256_sub_ps(_mm256_loadu_ps(y + i), vm));
    const __m256 e1 = sparrow_exp8_avx2(_mm256_sub_ps(_mm256_loadu_ps(y + i + 8), vm));
    _mm256_storeu_ps(y + i, e0);
    _mm256_storeu_ps(y + i + 8, e1);
    s0 = _mm256_add_ps(s0, e0);
    s1 = _mm256_add_ps(s1, e1);
  }
  for (; i + 8 <= n; i += 8) {
    const __m256 e = sparrow_exp8_avx2(_mm256_sub_ps(_mm256_loadu_ps(y + i), vm));
    _mm256_storeu_ps(y + i, e);
    s0 = _mm256_add_ps(s0, e);
  }
  if (rest > 0) {
    const __m256 e = sparrow_exp8_avx2(_mm256_sub_ps(_mm256_maskload_ps(y + i, tail), vm));
    _mm256_maskstore_ps(y + i, tail, e);
    s1 = _mm256_add_ps(s1, _mm256_and_ps(e, _mm256_castsi256_ps(tail)));
  }
  const __m256 vs = _mm256_set1_ps(1.0f / sparrow_hsum8_avx2(_mm256_add_ps(s0, s1)));

  for (i = 0; i + 16 <= n; i += 16) {
    _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), vs));
    _mm256_storeu_ps(y + i + 8, _mm256_mul_ps(_mm256_loadu_ps(y + i + 8), vs));
  }
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), vs));
  if (rest > 0) _mm256_maskstore_ps(y + i, tail, _mm256_mul_ps(_mm256_maskload_ps(y + i, tail), vs));
}
#endif
