/* Depthwise row, AVX2/FMA: 32 outputs (four independent FMA chains) per step, then 8, then a
 * masked tail that reads no lane past wo. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdint.h>

#include "dwconv.h"

#define TARGET __attribute__((target("avx2,fma")))

/* NaN stays NaN: max/min return their second operand when either is NaN. */
TARGET static inline __m256 clamp8(__m256 v, __m256 lo, __m256 hi) { return _mm256_min_ps(hi, _mm256_max_ps(lo, v)); }

TARGET void sparrow_dwconv_f32_1x32__avx2(size_t wo, size_t taps, const float* row, const size_t* offsets,
                                          const float* weights, float bias, float lo, float hi, float* out) {
  const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi), vb = _mm256_set1_ps(bias);
  size_t ox = 0;
  for (; ox + 32 <= wo; ox += 32) {
    __m256 a0 = vb, a1 = vb, a2 = vb, a3 = vb;
    for (size_t t = 0; t < taps; t++) {
      const float* p = row + offsets[t] + ox;
      const __m256 wt = _mm256_broadcast_ss(weights + t);
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(p), wt, a0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(p + 8), wt, a1);
      a2 = _mm256_fmadd_ps(_mm256_loadu_ps(p + 16), wt, a2);
      a3 = _mm256_fmadd_ps(_mm256_loadu_ps(p + 24), wt, a3);
    }
    _mm256_storeu_ps(out + ox, clamp8(a0, vlo, vhi));
    _mm256_storeu_ps(out + ox + 8, clamp8(a1, vlo, vhi));
    _mm256_storeu_ps(out + ox + 16, clamp8(a2, vlo, vhi));
    _mm256_storeu_ps(out + ox + 24, clamp8(a3, vlo, vhi));
  }
  for (; ox + 8 <= wo; ox += 8) {
    __m256 a = vb;
    for (size_t t = 0; t < taps; t++)
      a = _mm256_fmadd_ps(_mm256_loadu_ps(row + offsets[t] + ox), _mm256_broadcast_ss(weights + t), a);
    _mm256_storeu_ps(out + ox, clamp8(a, vlo, vhi));
  }
  if (ox < wo) {
    const int rest = (int)(wo - ox);
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(rest), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256 a = vb;
    for (size_t t = 0; t < taps; t++)
      a = _mm256_fmadd_ps(_mm256_maskload_ps(row + offsets[t] + ox, mask), _mm256_broadcast_ss(weights + t), a);
    _mm256_maskstore_ps(out + ox, mask, clamp8(a, vlo, vhi));
  }
}
#endif
