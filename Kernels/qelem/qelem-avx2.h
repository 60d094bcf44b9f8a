/* AVX2 helpers of the quantized element-wise kernels (qelem.h): the scalar definition's float
 * operations 8 lanes wide; vcvtps2dq rounds as MXCSR says (to nearest, ties to even), as
 * nearbyintf. */
#ifndef SPARROW_QELEM_AVX2_H
#define SPARROW_QELEM_AVX2_H
#if defined(__x86_64__)
#include <immintrin.h>

#include "qelem.h"

#define T __attribute__((target("avx2,fma")))

/* 8 bytes at x dequantized: float((x ^ flip) - zero) * scale. */
T static inline __m256 sparrow_qelem_dq8_avx2(const uint8_t* x, __m128i flip, __m256i zero, __m256 scale) {
  const __m128i b = _mm_xor_si128(_mm_loadl_epi64((const __m128i*)x), flip);
  return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepu8_epi32(b), zero)), scale);
}

typedef struct {
  __m256 scale, lo, hi;
  __m256i zero;
  __m256i flip;
  __m256i order;
} sparrow_qelem_q_avx2;

T static inline sparrow_qelem_q_avx2 sparrow_qelem_q_setup_avx2(const sparrow_qelem_params* p) {
  sparrow_qelem_q_avx2 q;
  q.scale = _mm256_set1_ps(p->y_scale);
  q.lo = _mm256_set1_ps((float)-p->y_zero);
  q.hi = _mm256_set1_ps((float)(255 - p->y_zero));
  q.zero = _mm256_set1_epi32(p->y_zero);
  q.flip = _mm256_set1_epi8((char)p->y_flip);
  q.order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  return q;
}

/* One lane group: v / scale, NaN to 0, clamped, rounded, plus the zero point (0..255 as int32). */
T static inline __m256i sparrow_qelem_q8_avx2(__m256 x, const sparrow_qelem_q_avx2* q) {
  __m256 v = _mm256_div_ps(x, q->scale);
  v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q));
  v = _mm256_min_ps(_mm256_max_ps(v, q->lo), q->hi);
  return _mm256_add_epi32(_mm256_cvtps_epi32(v), q->zero);
}

/* 32 quantized values (4 groups of 8, in order) stored at y. The values are within 0..255, so
 * the saturating packs keep them; the packs interleave 128-bit lanes, the permute restores order. */
T static inline void sparrow_qelem_store32_avx2(uint8_t* y, __m256i q0, __m256i q1, __m256i q2, __m256i q3,
                                                const sparrow_qelem_q_avx2* q) {
  const __m256i b = _mm256_packus_epi16(_mm256_packs_epi32(q0, q1), _mm256_packs_epi32(q2, q3));
  const __m256i r = _mm256_permutevar8x32_epi32(b, q->order);
  _mm256_storeu_si256((__m256i*)y, _mm256_xor_si256(r, q->flip));
}

#endif
#endif
