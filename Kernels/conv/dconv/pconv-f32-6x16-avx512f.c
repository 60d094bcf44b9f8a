/* Pixel-major dense direct convolution, AVX-512F: 6 pixels x 16 output channels (dconv.h). Per
 * k one 16-channel weight load and six pixel broadcasts (folded into the FMAs as {1to16} memory
 * operands): half the FMA instructions of the AVX2 kernel's 12 ymm for the same block. Six
 * accumulators alone would leave the two 512-bit FMA ports waiting on the FMA latency (6 chains
 * of 4 cycles), so even and odd k go to two sets of six, added at the end: the one kernel of the
 * family whose sum is not in k order. The block is then biased and clamped in registers and
 * stored: row-major token rows with a masked store (a linear layer), or transposed through a
 * stack tile (16 channel rows of up to 6 pixels, a convolution).
 *
 * A block of at most 8 channels (a narrow layer, the last panel of one, rows gathered by the
 * gate) runs in 8-lane vectors with k in order (pconv-half-x86.h: its rounding is the AVX2
 * kernel's, not the two chains'): 1.5x faster per call than the whole block on Zen 4.
 *
 * Measured (Intel Xeon, AVX-512, 1 thread, C harness): MiniLM's attention products (12 heads,
 * Q.K^T and P.V at seq 128) 341 us on the AVX2 kernel, 265 with one set of accumulators, 231
 * with two; a dense 1536 x 384 linear layer on 128 tokens 1775, 1407, 1226 us. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "dconv.h"

#define T __attribute__((target("avx512f,avx2,fma")))

#include "pconv-half-x86.h"

/* The K loop for the first NP pixels (a short last block skips the others' FMAs). */
#define PBLOCK(NAME, NP)                                                                                          \
  static inline T void NAME(size_t K, const float* wp, const size_t* koff, const float* const* px, __m512 c[6]) { \
    const float *p0 = px[0], *p1 = px[1], *p2 = px[2], *p3 = px[3], *p4 = px[4], *p5 = px[5];                     \
    __m512 c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3], c4 = c[4], c5 = c[5];                                      \
    __m512 d0 = _mm512_setzero_ps(), d1 = d0, d2 = d0, d3 = d0, d4 = d0, d5 = d0;                                 \
    size_t k = 0;                                                                                                 \
    _Pragma("clang loop unroll_count(2)") for (; k + 1 < K; k += 2) {                                             \
      const size_t o = koff[k], u = koff[k + 1];                                                                  \
      const __m512 w = _mm512_load_ps(wp + k * SPARROW_PCONV_NR);                                                 \
      const __m512 v = _mm512_load_ps(wp + k * SPARROW_PCONV_NR + SPARROW_PCONV_NR);                              \
      c0 = _mm512_fmadd_ps(_mm512_set1_ps(p0[o]), w, c0);                                                         \
      if ((NP) > 1) c1 = _mm512_fmadd_ps(_mm512_set1_ps(p1[o]), w, c1);                                           \
      if ((NP) > 2) c2 = _mm512_fmadd_ps(_mm512_set1_ps(p2[o]), w, c2);                                           \
      if ((NP) > 3) c3 = _mm512_fmadd_ps(_mm512_set1_ps(p3[o]), w, c3);                                           \
      if ((NP) > 4) c4 = _mm512_fmadd_ps(_mm512_set1_ps(p4[o]), w, c4);                                           \
      if ((NP) > 5) c5 = _mm512_fmadd_ps(_mm512_set1_ps(p5[o]), w, c5);                                           \
      d0 = _mm512_fmadd_ps(_mm512_set1_ps(p0[u]), v, d0);                                                         \
      if ((NP) > 1) d1 = _mm512_fmadd_ps(_mm512_set1_ps(p1[u]), v, d1);                                           \
      if ((NP) > 2) d2 = _mm512_fmadd_ps(_mm512_set1_ps(p2[u]), v, d2);                                           \
      if ((NP) > 3) d3 = _mm512_fmadd_ps(_mm512_set1_ps(p3[u]), v, d3);                                           \
      if ((NP) > 4) d4 = _mm512_fmadd_ps(_mm512_set1_ps(p4[u]), v, d4);                                           \
      if ((NP) > 5) d5 = _mm512_fmadd_ps(_mm512_set1_ps(p5[u]), v, d5);                                           \
    }                                                                                                             \
    if (k < K) {                                                                                                  \
      const size_t o = koff[k];                                                                                   \
      const __m512 w = _mm512_load_ps(wp + k * SPARROW_PCONV_NR);                                                 \
      c0 = _mm512_fmadd_ps(_mm512_set1_ps(p0[o]), w, c0);                                                         \
      if ((NP) > 1) c1 = _mm512_fmadd_ps(_mm512_set1_ps(p1[o]), w, c1);                                           \
      if ((NP) > 2) c2 = _mm512_fmadd_ps(_mm512_set1_ps(p2[o]), w, c2);                                           \
      if ((NP) > 3) c3 = _mm512_fmadd_ps(_mm512_set1_ps(p3[o]), w, c3);                                           \
      if ((NP) > 4) c4 = _mm512_fmadd_ps(_mm512_set1_ps(p4[o]), w, c4);                                           \
      if ((NP) > 5) c5 = _mm512_fmadd_ps(_mm512_set1_ps(p5[o]), w, c5);                                           \
    }                                                                                                             \
    c[0] = _mm512_add_ps(c0, d0), c[1] = _mm512_add_ps(c1, d1), c[2] = _mm512_add_ps(c2, d2);                     \
    c[3] = _mm512_add_ps(c3, d3), c[4] = _mm512_add_ps(c4, d4), c[5] = _mm512_add_ps(c5, d5);                     \
  }
PBLOCK(block6, 6)
PBLOCK(block4, 4)
PBLOCK(block2, 2)
PBLOCK(block1, 1)
#undef PBLOCK

T void sparrow_pconv_f32_6x16__avx512f(size_t K, const float* wp, const size_t* koff, const float* const* px,
                                       size_t pixels, size_t chans, const float* bias, float lo, float hi, float* y,
                                       size_t y_plane, size_t y_pixel, float* part, int first, int last) {
  if (chans <= 8) {
    pconv_half_panel(K, wp, koff, px, pixels, chans, bias, lo, hi, y, y_plane, y_pixel, part, first, last);
    return;
  }
  __m512 c[6];
  /* part is only 32-byte aligned (dconv.h): unaligned loads and stores. */
  for (size_t i = 0; i < 6; i++) c[i] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(part + 16 * i);
  if (pixels > 4)
    block6(K, wp, koff, px, c);
  else if (pixels > 2)
    block4(K, wp, koff, px, c);
  else if (pixels > 1)
    block2(K, wp, koff, px, c);
  else
    block1(K, wp, koff, px, c);
  if (!last) {
    for (size_t i = 0; i < 6; i++) _mm512_storeu_ps(part + 16 * i, c[i]);
    return;
  }
  const __mmask16 m = chans >= SPARROW_PCONV_NR ? (__mmask16)0xFFFF : (__mmask16)((1u << chans) - 1u);
  const __m512 b = bias != NULL ? _mm512_maskz_loadu_ps(m, bias) : _mm512_setzero_ps();
  const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
  if (y_plane == 1) {
    /* Row-major output (a linear layer): each pixel's channels are one run. */
    for (size_t i = 0; i < pixels; i++)
      _mm512_mask_storeu_ps(y + i * y_pixel, m, _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(c[i], b), vlo), vhi));
    return;
  }
  float t[SPARROW_PCONV_MR][SPARROW_PCONV_NR] __attribute__((aligned(64)));
  for (size_t i = 0; i < 6; i++) _mm512_store_ps(t[i], _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(c[i], b), vlo), vhi));
  pconv_store_tile(&t[0][0], SPARROW_PCONV_NR, pixels, chans, y, y_plane, y_pixel);
}
#endif
