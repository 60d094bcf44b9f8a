/* Pixel-major dense direct convolution, AVX-512F, two panels at once: 6 pixels x 32 output
 * channels (dconv.h, sparrow_pconv_pair_fn). Per k two 16-channel weight loads (one from each
 * panel) and six pixel broadcasts feed twelve accumulators: 12 FMAs per 8 loads, where the
 * one-panel kernel (pconv-f32-6x16-avx512f.c) issues 6 per 7 and is bound by the load ports on
 * Intel cores. Twelve independent chains also cover the FMA latency, so the sum runs over k in
 * order (no even/odd split). The block is biased, clamped and stored as the one-panel kernel's.
 *
 * Measured (Intel Xeon family 6 model 207, AVX-512, 1 thread, C harness on ResNet-18's 3x3
 * layers, unsliced K): 64 ch at 56x56 2.44 -> 1.77 ms, 128 at 28x28 2.38 -> 1.64, 256 at 14x14
 * 3.30 -> 2.51 against the one-panel kernel over the same panels. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "dconv.h"

#define T __attribute__((target("avx512f,avx2,fma")))
#define NR SPARROW_PCONV_NR

/* The K loop for the first NP pixels; c[0..5] panel 0, c[6..11] panel 1. */
#define PBLOCK(NAME, NP)                                                                                \
  static inline T void NAME(size_t K, const float* wp, size_t wstride, const size_t* koff,            \
                            const float* const* px, __m512 c[12]) {                                   \
    const float *p0 = px[0], *p1 = px[1], *p2 = px[2], *p3 = px[3], *p4 = px[4], *p5 = px[5];           \
    const float* wq = wp + wstride;                                                                     \
    __m512 a0 = c[0], a1 = c[1], a2 = c[2], a3 = c[3], a4 = c[4], a5 = c[5];                            \
    __m512 b0 = c[6], b1 = c[7], b2 = c[8], b3 = c[9], b4 = c[10], b5 = c[11];                          \
    _Pragma("clang loop unroll_count(2)") for (size_t k = 0; k < K; k++) {                              \
      const size_t o = koff[k];                                                                         \
      const __m512 w = _mm512_load_ps(wp + k * NR), v = _mm512_load_ps(wq + k * NR);                    \
      __m512 s = _mm512_set1_ps(p0[o]);                                                                 \
      a0 = _mm512_fmadd_ps(s, w, a0), b0 = _mm512_fmadd_ps(s, v, b0);                                   \
      if ((NP) > 1) s = _mm512_set1_ps(p1[o]), a1 = _mm512_fmadd_ps(s, w, a1), b1 = _mm512_fmadd_ps(s, v, b1); \
      if ((NP) > 2) s = _mm512_set1_ps(p2[o]), a2 = _mm512_fmadd_ps(s, w, a2), b2 = _mm512_fmadd_ps(s, v, b2); \
      if ((NP) > 3) s = _mm512_set1_ps(p3[o]), a3 = _mm512_fmadd_ps(s, w, a3), b3 = _mm512_fmadd_ps(s, v, b3); \
      if ((NP) > 4) s = _mm512_set1_ps(p4[o]), a4 = _mm512_fmadd_ps(s, w, a4), b4 = _mm512_fmadd_ps(s, v, b4); \
      if ((NP) > 5) s = _mm512_set1_ps(p5[o]), a5 = _mm512_fmadd_ps(s, w, a5), b5 = _mm512_fmadd_ps(s, v, b5); \
    }                                                                                                   \
    c[0] = a0, c[1] = a1, c[2] = a2, c[3] = a3, c[4] = a4, c[5] = a5;                                   \
    c[6] = b0, c[7] = b1, c[8] = b2, c[9] = b3, c[10] = b4, c[11] = b5;                                 \
  }
PBLOCK(block6, 6)
PBLOCK(block4, 4)
PBLOCK(block2, 2)
PBLOCK(block1, 1)
#undef PBLOCK

static inline T __mmask16 lanes(size_t n) { return n >= NR ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u); }

T void sparrow_pconv_f32_6x32__avx512f(size_t K, const float* wp, size_t wstride, const size_t* koff,
                                       const float* const* px, size_t pixels, size_t chans, const float* bias,
                                       float lo, float hi, float* y, size_t y_plane, size_t y_pixel, float* part,
                                       int first, int last) {
  __m512 c[12];
  /* part is only 32-byte aligned (dconv.h): unaligned loads and stores. */
  for (size_t i = 0; i < 12; i++) c[i] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(part + NR * i);
  if (pixels > 4)
    block6(K, wp, wstride, koff, px, c);
  else if (pixels > 2)
    block4(K, wp, wstride, koff, px, c);
  else if (pixels > 1)
    block2(K, wp, wstride, koff, px, c);
  else
    block1(K, wp, wstride, koff, px, c);
  if (!last) {
    for (size_t i = 0; i < 12; i++) _mm512_storeu_ps(part + NR * i, c[i]);
    return;
  }
  const size_t chans1 = chans > NR ? chans - NR : 0;
  const __mmask16 m0 = lanes(chans), m1 = lanes(chans1);
  const __m512 bb0 = bias != NULL ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
  const __m512 bb1 = bias != NULL && chans1 > 0 ? _mm512_maskz_loadu_ps(m1, bias + NR) : _mm512_setzero_ps();
  const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
  for (size_t i = 0; i < 6; i++) {
    c[i] = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(c[i], bb0), vlo), vhi);
    c[6 + i] = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(c[6 + i], bb1), vlo), vhi);
  }
  if (y_plane == 1) {
    /* Row-major output (a linear layer): each pixel's channels are one run. */
    for (size_t i = 0; i < pixels; i++) {
      _mm512_mask_storeu_ps(y + i * y_pixel, m0, c[i]);
      if (chans1 > 0) _mm512_mask_storeu_ps(y + i * y_pixel + NR, m1, c[6 + i]);
    }
    return;
  }
  float t[2 * SPARROW_PCONV_MR][NR] __attribute__((aligned(64)));
  for (size_t i = 0; i < 12; i++) _mm512_store_ps(t[i], c[i]);
  if (pixels == SPARROW_PCONV_MR && y_pixel == 1) {
    for (size_t j = 0; j < chans; j++) {
      const float(*s)[NR] = j < NR ? t : t + SPARROW_PCONV_MR;
      const size_t l = j % NR;
      float* yj = y + j * y_plane;
      yj[0] = s[0][l], yj[1] = s[1][l], yj[2] = s[2][l], yj[3] = s[3][l], yj[4] = s[4][l], yj[5] = s[5][l];
    }
    return;
  }
  for (size_t j = 0; j < chans; j++)
    for (size_t i = 0; i < pixels; i++)
      y[j * y_plane + i * y_pixel] = t[(j < NR ? 0 : SPARROW_PCONV_MR) + i][j % NR];
}
#endif
