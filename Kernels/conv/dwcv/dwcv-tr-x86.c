/* Channels-in-lanes depthwise (dwcv.h), x86: the block's transposes in registers. In: 16 (8)
 * channels x 16 (8) flat pixels per register transpose, each pixel's vector stored at its padded
 * position (pos[p] * L; SIZE_MAX: outside the buffer), the padding never written (the driver
 * zeroes the buffer once per task). Out: 16 (8) pixels' vectors back into channel rows. The
 * generic path (scalar transposes through a pixel-major copy and a row copy with memsets) took
 * as long as the convolution itself on MobileNetV2's 7x7 layers. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdint.h>

#include "dwcv.h"

#define T16 __attribute__((target("avx512f")))
#define T8 __attribute__((target("avx2")))

/* r[i][j] -> r[j][i], 16 x 16: 32-bit and 64-bit unpacks, then a 4 x 4 transpose of 128-bit lanes. */
T16 static inline void tr16(__m512 r[16]) {
  __m512 t[16], s[16];
  for (int i = 0; i < 16; i += 2)
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]), t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  for (int g = 0; g < 4; g++) {
    const __m512d a = _mm512_castps_pd(t[4 * g]), b = _mm512_castps_pd(t[4 * g + 1]);
    const __m512d c = _mm512_castps_pd(t[4 * g + 2]), d = _mm512_castps_pd(t[4 * g + 3]);
    s[4 * g] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c)), s[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    s[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d)),
              s[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  for (int j = 0; j < 4; j++) {
    const __m512 p = _mm512_shuffle_f32x4(s[j], s[4 + j], 0x88), q = _mm512_shuffle_f32x4(s[j], s[4 + j], 0xDD);
    const __m512 u = _mm512_shuffle_f32x4(s[8 + j], s[12 + j], 0x88),
                 v = _mm512_shuffle_f32x4(s[8 + j], s[12 + j], 0xDD);
    r[j] = _mm512_shuffle_f32x4(p, u, 0x88), r[8 + j] = _mm512_shuffle_f32x4(p, u, 0xDD);
    r[4 + j] = _mm512_shuffle_f32x4(q, v, 0x88), r[12 + j] = _mm512_shuffle_f32x4(q, v, 0xDD);
  }
}

/* The same, 8 x 8. */
T8 static inline void tr8(__m256 r[8]) {
  __m256 t[8], s[8];
  for (int i = 0; i < 8; i += 2)
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]), t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  for (int g = 0; g < 2; g++) {
    const __m256d a = _mm256_castps_pd(t[4 * g]), b = _mm256_castps_pd(t[4 * g + 1]);
    const __m256d c = _mm256_castps_pd(t[4 * g + 2]), d = _mm256_castps_pd(t[4 * g + 3]);
    s[4 * g] = _mm256_castpd_ps(_mm256_unpacklo_pd(a, c)), s[4 * g + 1] = _mm256_castpd_ps(_mm256_unpackhi_pd(a, c));
    s[4 * g + 2] = _mm256_castpd_ps(_mm256_unpacklo_pd(b, d)),
              s[4 * g + 3] = _mm256_castpd_ps(_mm256_unpackhi_pd(b, d));
  }
  for (int j = 0; j < 4; j++)
    r[j] = _mm256_permute2f128_ps(s[j], s[4 + j], 0x20), r[4 + j] = _mm256_permute2f128_ps(s[j], s[4 + j], 0x31);
}

T16 void sparrow_dwcv_in_f32__avx512f(const float* x, size_t hw, size_t n, const size_t* pos, float* t) {
  for (size_t p0 = 0; p0 < hw; p0 += 16) {
    const size_t m = hw - p0 < 16 ? hw - p0 : 16;
    const __mmask16 mk = (__mmask16)(m == 16 ? 0xFFFFu : (1u << m) - 1u);
    __m512 r[16];
    for (size_t l = 0; l < 16; l++) r[l] = l < n ? _mm512_maskz_loadu_ps(mk, x + l * hw + p0) : _mm512_setzero_ps();
    tr16(r);
    for (size_t j = 0; j < m; j++)
      if (pos[p0 + j] != SIZE_MAX) _mm512_storeu_ps(t + pos[p0 + j] * 16, r[j]);
  }
}

T16 void sparrow_dwcv_out_f32__avx512f(const float* o, size_t howo, size_t n, float* y) {
  for (size_t q0 = 0; q0 < howo; q0 += 16) {
    const size_t m = howo - q0 < 16 ? howo - q0 : 16;
    __m512 r[16];
    for (size_t j = 0; j < 16; j++) r[j] = j < m ? _mm512_loadu_ps(o + (q0 + j) * 16) : _mm512_setzero_ps();
    tr16(r);
    if (m == 16)
      for (size_t l = 0; l < n; l++) _mm512_storeu_ps(y + l * howo + q0, r[l]);
    else
      for (size_t l = 0; l < n; l++) _mm512_mask_storeu_ps(y + l * howo + q0, (__mmask16)((1u << m) - 1u), r[l]);
  }
}

T8 void sparrow_dwcv_in_f32__avx2(const float* x, size_t hw, size_t n, const size_t* pos, float* t) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (size_t p0 = 0; p0 < hw; p0 += 8) {
    const size_t m = hw - p0 < 8 ? hw - p0 : 8;
    const __m256i mk = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)m), lane);
    __m256 r[8];
    for (size_t l = 0; l < 8; l++) r[l] = l < n ? _mm256_maskload_ps(x + l * hw + p0, mk) : _mm256_setzero_ps();
    tr8(r);
    for (size_t j = 0; j < m; j++)
      if (pos[p0 + j] != SIZE_MAX) _mm256_storeu_ps(t + pos[p0 + j] * 8, r[j]);
  }
}

T8 void sparrow_dwcv_out_f32__avx2(const float* o, size_t howo, size_t n, float* y) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (size_t q0 = 0; q0 < howo; q0 += 8) {
    const size_t m = howo - q0 < 8 ? howo - q0 : 8;
    __m256 r[8];
    for (size_t j = 0; j < 8; j++) r[j] = j < m ? _mm256_loadu_ps(o + (q0 + j) * 8) : _mm256_setzero_ps();
    tr8(r);
    if (m == 8) {
      for (size_t l = 0; l < n; l++) _mm256_storeu_ps(y + l * howo + q0, r[l]);
    } else {
      const __m256i mk = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)m), lane);
      for (size_t l = 0; l < n; l++) _mm256_maskstore_ps(y + l * howo + q0, mk, r[l]);
    }
  }
}
#endif
