/* Layer normalisation of one row, AVX2/FMA: the sum and the squared deviations with four
 * accumulators (32 values a step), then 8, then a masked tail; the output pass has one loop per
 * combination of scale and bias. See rowwise.h. */
#if defined(__x86_64__)
#include <math.h>

#include "math-avx2.h"
#include "rowwise.h"

#define TARGET __attribute__((target("avx2,fma")))

SPARROW_AVX2 void normalise(size_t n, const float* x, const float* scale, const float* bias, __m256 vm, __m256 vr,
                            float* y, int has_scale, int has_bias) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm), vr);
    if (has_scale) v = _mm256_mul_ps(v, _mm256_loadu_ps(scale + i));
    if (has_bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + i));
    _mm256_storeu_ps(y + i, v);
  }
  if (i < n) {
    const __m256i tail = sparrow_tail_mask_avx2(n - i);
    __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_maskload_ps(x + i, tail), vm), vr);
    if (has_scale) v = _mm256_mul_ps(v, _mm256_maskload_ps(scale + i, tail));
    if (has_bias) v = _mm256_add_ps(v, _mm256_maskload_ps(bias + i, tail));
    _mm256_maskstore_ps(y + i, tail, v);
  }
}

TARGET void sparrow_layernorm_f32_1x32__avx2(size_t n, const float* x, const float* scale, const float* bias,
                                             float epsilon, float* y, float* stats) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
    a1 = _mm256_add_ps(a1, _mm256_loadu_ps(x + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_loadu_ps(x + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_loadu_ps(x + i + 24));
  }
  for (; i + 8 <= n; i += 8) a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
  const __m256i tail = sparrow_tail_mask_avx2(n - i);
  if (i < n) a1 = _mm256_add_ps(a1, _mm256_maskload_ps(x + i, tail));
  const float mean = sparrow_hsum8_avx2(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3))) / (float)n;
  const __m256 vm = _mm256_set1_ps(mean);

  a0 = a1 = a2 = a3 = _mm256_setzero_ps();
  for (i = 0; i + 32 <= n; i += 32) {
    const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + i), vm), d1 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vm);
    const __m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 16), vm), d3 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 24), vm);
    a0 = _mm256_fmadd_ps(d0, d0, a0);
    a1 = _mm256_fmadd_ps(d1, d1, a1);
    a2 = _mm256_fmadd_ps(d2, d2, a2);
    a3 = _mm256_fmadd_ps(d3, d3, a3);
  }
  for (; i + 8 <= n; i += 8) {
    const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + i), vm);
    a0 = _mm256_fmadd_ps(d, d, a0);
  }
  if (i < n) {
    const __m256 d = _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(x + i, tail), vm), _mm256_castsi256_ps(tail));
    a1 = _mm256_fmadd_ps(d, d, a1);
  }
  const float var = sparrow_hsum8_avx2(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3))) / (float)n;
  const float r = 1.0f / sqrtf(var + epsilon);
  stats[0] = mean;
  stats[1] = r;
  const __m256 vr = _mm256_set1_ps(r);
  if (scale != NULL && bias != NULL) normalise(n, x, scale, bias, vm, vr, y, 1, 1);
  else if (scale != NULL) normalise(n, x, scale, bias, vm, vr, y, 1, 0);
  else if (bias != NULL) normalise(n, x, scale, bias, vm, vr, y, 0, 1);
  else normalise(n, x, scale, bias, vm, vr, y, 0, 0);
}
#endif
