/* int8 add (DequantizeLinear -> Add -> QuantizeLinear), AVX2, 32 values per step (qelem.h): both
 * inputs dequantized, added, clamped, quantized, with the scalar definition's float operations;
 * the tail runs the scalar definition. */
#if defined(__x86_64__)
#include "qelem-avx2.h"

T void sparrow_qadd_u8_1x32__avx2(size_t n, const void* a, const void* b, const sparrow_qelem_params* p, void* y) {
  const uint8_t *xa = (const uint8_t*)a, *xb = (const uint8_t*)b;
  uint8_t* out = (uint8_t*)y;
  const __m128i fa = _mm_set1_epi8((char)p->a_flip), fb = _mm_set1_epi8((char)p->b_flip);
  const __m256i za = _mm256_set1_epi32(p->a_zero), zb = _mm256_set1_epi32(p->b_zero);
  const __m256 sa = _mm256_set1_ps(p->a_scale), sb = _mm256_set1_ps(p->b_scale);
  const __m256 lo = _mm256_set1_ps(p->lo), hi = _mm256_set1_ps(p->hi);
  const sparrow_qelem_q_avx2 q = sparrow_qelem_q_setup_avx2(p);
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256i r[4];
    for (size_t j = 0; j < 4; j++) {
      const __m256 va = sparrow_qelem_dq8_avx2(xa + i + 8 * j, fa, za, sa);
      const __m256 vb = sparrow_qelem_dq8_avx2(xb + i + 8 * j, fb, zb, sb);
      /* Bounds first: maxps/minps return their second operand when one is NaN, so a NaN sum stays
       * NaN and quantizes to the zero point, as in the scalar definition. */
      const __m256 s = _mm256_min_ps(hi, _mm256_max_ps(lo, _mm256_add_ps(va, vb)));
      r[j] = sparrow_qelem_q8_avx2(s, &q);
    }
    sparrow_qelem_store32_avx2(out + i, r[0], r[1], r[2], r[3], &q);
  }
  for (; i < n; i++) out[i] = sparrow_qelem_q1(sparrow_qelem_sum1(xa[i], xb[i], p), p);
}
#endif
