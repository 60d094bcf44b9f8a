/* int8 add (DequantizeLinear -> Add -> QuantizeLinear), AVX-512F, 64 values per step (qelem.h):
 * the AVX2 kernel's float operations 16 lanes wide, each 16-lane result narrowed to bytes by one
 * saturating down-convert (vpmovusdb: the values are within 0..255 already) instead of the
 * AVX2 kernel's packs and lane permute; a NaN quotient is masked to 0. Steps of 16 for the rest,
 * the last few values by the scalar definition. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "qelem.h"

#define T __attribute__((target("avx512f,avx2,fma")))

/* 16 bytes at x dequantized: float((x ^ flip) - zero) * scale. */
T static inline __m512 dq16(const uint8_t* x, __m128i flip, __m512i zero, __m512 scale) {
  const __m128i b = _mm_xor_si128(_mm_loadu_si128((const __m128i*)x), flip);
  return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(b), zero)), scale);
}

typedef struct {
  __m128i fa, fb, fy;
  __m512i za, zb, zy;
  __m512 sa, sb, sy, lo, hi, qlo, qhi;
} qadd_consts;

/* 16 values: both inputs dequantized, added, clamped (bounds first: maxps/minps return their
 * second operand when one is NaN, so a NaN sum stays NaN), divided, NaN to 0, clamped to the
 * output's range, rounded (to nearest even, as MXCSR says) and stored as bytes. */
T static inline void add16(const uint8_t* a, const uint8_t* b, uint8_t* y, const qadd_consts* c) {
  const __m512 va = dq16(a, c->fa, c->za, c->sa), vb = dq16(b, c->fb, c->zb, c->sb);
  const __m512 s = _mm512_min_ps(c->hi, _mm512_max_ps(c->lo, _mm512_add_ps(va, vb)));
  __m512 v = _mm512_div_ps(s, c->sy);
  v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, v, _CMP_ORD_Q), v);
  v = _mm512_min_ps(_mm512_max_ps(v, c->qlo), c->qhi);
  const __m128i q = _mm512_cvtusepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(v), c->zy));
  _mm_storeu_si128((__m128i*)y, _mm_xor_si128(q, c->fy));
}

T void sparrow_qadd_u8_1x64__avx512f(size_t n, const void* a, const void* b, const sparrow_qelem_params* p, void* y) {
  const uint8_t *xa = (const uint8_t*)a, *xb = (const uint8_t*)b;
  uint8_t* out = (uint8_t*)y;
  const qadd_consts c = {.fa = _mm_set1_epi8((char)p->a_flip),
                         .fb = _mm_set1_epi8((char)p->b_flip),
                         .fy = _mm_set1_epi8((char)p->y_flip),
                         .za = _mm512_set1_epi32(p->a_zero),
                         .zb = _mm512_set1_epi32(p->b_zero),
                         .zy = _mm512_set1_epi32(p->y_zero),
                         .sa = _mm512_set1_ps(p->a_scale),
                         .sb = _mm512_set1_ps(p->b_scale),
                         .sy = _mm512_set1_ps(p->y_scale),
                         .lo = _mm512_set1_ps(p->lo),
                         .hi = _mm512_set1_ps(p->hi),
                         .qlo = _mm512_set1_ps((float)-p->y_zero),
                         .qhi = _mm512_set1_ps((float)(255 - p->y_zero))};
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    add16(xa + i, xb + i, out + i, &c);
    add16(xa + i + 16, xb + i + 16, out + i + 16, &c);
    add16(xa + i + 32, xb + i + 32, out + i + 32, &c);
    add16(xa + i + 48, xb + i + 48, out + i + 48, &c);
  }
  for (; i + 16 <= n; i += 16) add16(xa + i, xb + i, out + i, &c);
  for (; i < n; i++) out[i] = sparrow_qelem_q1(sparrow_qelem_sum1(xa[i], xb[i], p), p);
}
#endif
