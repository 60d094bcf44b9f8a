/* exp and erf on 16 floats for the AVX-512F row kernels (included only inside
 * `#if defined(__x86_64__)`): the same range reductions, polynomials and constants as
 * math-avx2.h (documented in rowwise.h), on one ZMM register; tails use lane masks. */
#ifndef SPARROW_ROWWISE_MATH_AVX512_H
#define SPARROW_ROWWISE_MATH_AVX512_H
#include <immintrin.h>

#define SPARROW_AVX512 __attribute__((target("avx512f,avx2,fma"), always_inline)) static inline

/* e^x: exact 0 below -87.3 (and for -inf), saturates at e^88 above 88; NaN stays NaN. */
SPARROW_AVX512 __m512 sparrow_exp16_avx512(__m512 x) {
  const __m512 lo = _mm512_set1_ps(-87.3f), hi = _mm512_set1_ps(88.0f);
  /* max/min return their second operand when either is NaN: x goes second. */
  const __m512 xc = _mm512_min_ps(hi, _mm512_max_ps(lo, x));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), xc);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  /* 2^n for n in [-126, 127]: the exponent field. */
  const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  const __m512 y = _mm512_mul_ps(p, _mm512_castsi512_ps(e));
  /* x < lo (an ordered comparison: false for NaN) gives 0. */
  return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, lo, _CMP_NLT_UQ), y);
}

/* erf(x): odd rational minimax approximation on (-4, 4), exactly +-1 beyond. */
SPARROW_AVX512 __m512 sparrow_erf16_avx512(__m512 x) {
  const __m512 z = _mm512_min_ps(_mm512_set1_ps(4.0f), _mm512_max_ps(_mm512_set1_ps(-4.0f), x));
  const __m512 z2 = _mm512_mul_ps(z, z);
  __m512 p = _mm512_set1_ps(-2.72614225801306e-10f);
  p = _mm512_fmadd_ps(p, z2, _mm512_set1_ps(2.77068142495902e-08f));
  p = _mm512_fmadd_ps(p, z2, _mm512_set1_ps(-2.10102402082508e-06f));
  p = _mm512_fmadd_ps(p, z2, _mm512_set1_ps(-5.69250639462346e-05f));
  p = _mm512_fmadd_ps(p, z2, _mm512_set1_ps(-7.34990630326855e-04f));
  p = _mm512_fmadd_ps(p, z2, _mm512_set1_ps(-2.95459980854025e-03f));
  p = _mm512_fmadd_ps(p, z2, _mm512_set1_ps(-1.60960333262415e-02f));
  p = _mm512_mul_ps(p, z);
  __m512 q = _mm512_set1_ps(-1.45660718464996e-05f);
  q = _mm512_fmadd_ps(q, z2, _mm512_set1_ps(-2.13374055278905e-04f));
  q = _mm512_fmadd_ps(q, z2, _mm512_set1_ps(-1.68282697438203e-03f));
  q = _mm512_fmadd_ps(q, z2, _mm512_set1_ps(-7.37332916720468e-03f));
  q = _mm512_fmadd_ps(q, z2, _mm512_set1_ps(-1.42647390514189e-02f));
  /* Exactly +-1 from |x| = 4 on, whatever the rounding of p / q there: GELU multiplies it by x. */
  const __m512i signbit = _mm512_set1_epi32((int)0x80000000u);
  const __m512i sign = _mm512_and_si512(_mm512_castps_si512(x), signbit);
  const __m512 one = _mm512_castsi512_ps(_mm512_or_si512(sign, _mm512_castps_si512(_mm512_set1_ps(1.0f))));
  const __m512 ax = _mm512_castsi512_ps(_mm512_andnot_si512(signbit, _mm512_castps_si512(x)));
  const __mmask16 big = _mm512_cmp_ps_mask(ax, _mm512_set1_ps(4.0f), _CMP_GE_OQ);
  return _mm512_mask_mov_ps(_mm512_div_ps(p, q), big, one);
}

/* Lanes i < rest set (0 <= rest <= 16). */
SPARROW_AVX512 __mmask16 sparrow_tail_mask_avx512(size_t rest) { return (__mmask16)((1u << rest) - 1u); }
#endif
