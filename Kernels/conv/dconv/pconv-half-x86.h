/* The 8-channel half block of the x86 pixel-major kernels (dconv.h; pconv-f32-6x16-avx2.c and
 * -avx512f.c include it after defining T, their target attribute): a block of at most 8 output
 * channels in 8-lane vectors, one weight load and six accumulators per k, k in order. Bound by
 * its loads (six pixel values and a weight row per k), not by the FMA latency: on Zen 4 (C
 * harness, K = 144) 1.25 ns per k, against 1.39 with even and odd k in two chains and 1.89 for
 * the whole 16-channel AVX-512 block. Also the transposed tile store both kernels end with. */
#ifndef SPARROW_PCONV_HALF_X86_H
#define SPARROW_PCONV_HALF_X86_H
#include <immintrin.h>

#include "dconv.h"

/* Tile row i (pixel i, at t + i * ld) stored transposed: y[j * y_plane + i * y_pixel] = t[i][j]
 * for i < pixels, j < chans. */
static inline void pconv_store_tile(const float* t, size_t ld, size_t pixels, size_t chans, float* y, size_t y_plane,
                                    size_t y_pixel) {
  if (pixels == SPARROW_PCONV_MR && y_pixel == 1) {
    for (size_t j = 0; j < chans; j++) {
      float* yj = y + j * y_plane;
      yj[0] = t[j], yj[1] = t[ld + j], yj[2] = t[2 * ld + j], yj[3] = t[3 * ld + j], yj[4] = t[4 * ld + j],
      yj[5] = t[5 * ld + j];
    }
    return;
  }
  for (size_t j = 0; j < chans; j++)
    for (size_t i = 0; i < pixels; i++) y[j * y_plane + i * y_pixel] = t[i * ld + j];
}

/* The K loop of channels 0..7 for the first NP pixels. */
#define HBLOCK(NAME, NP)                                                                                          \
  static inline T void NAME(size_t K, const float* wp, const size_t* koff, const float* const* px, __m256 c[6]) { \
    const float *p0 = px[0], *p1 = px[1], *p2 = px[2], *p3 = px[3], *p4 = px[4], *p5 = px[5];                     \
    __m256 c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3], c4 = c[4], c5 = c[5];                                      \
    _Pragma("clang loop unroll_count(4)") for (size_t k = 0; k < K; k++) {                                        \
      const size_t o = koff[k];                                                                                   \
      const __m256 w0 = _mm256_load_ps(wp + k * SPARROW_PCONV_NR);                                                \
      c0 = _mm256_fmadd_ps(_mm256_broadcast_ss(p0 + o), w0, c0);                                                  \
      if ((NP) > 1) c1 = _mm256_fmadd_ps(_mm256_broadcast_ss(p1 + o), w0, c1);                                    \
      if ((NP) > 2) c2 = _mm256_fmadd_ps(_mm256_broadcast_ss(p2 + o), w0, c2);                                    \
      if ((NP) > 3) c3 = _mm256_fmadd_ps(_mm256_broadcast_ss(p3 + o), w0, c3);                                    \
      if ((NP) > 4) c4 = _mm256_fmadd_ps(_mm256_broadcast_ss(p4 + o), w0, c4);                                    \
      if ((NP) > 5) c5 = _mm256_fmadd_ps(_mm256_broadcast_ss(p5 + o), w0, c5);                                    \
    }                                                                                                             \
    c[0] = c0, c[1] = c1, c[2] = c2, c[3] = c3, c[4] = c4, c[5] = c5;                                             \
  }
HBLOCK(pconv_half6, 6)
HBLOCK(pconv_half4, 4)
HBLOCK(pconv_half2, 2)
HBLOCK(pconv_half1, 1)
#undef HBLOCK

/* At most 8 channels: pixel i's sums in c[i] (part keeps them in its first 8 lanes per pixel). */
static T void pconv_half_panel(size_t K, const float* wp, const size_t* koff, const float* const* px, size_t pixels,
                               size_t chans, const float* bias, float lo, float hi, float* y, size_t y_plane,
                               size_t y_pixel, float* part, int first, int last) {
  __m256 c[6];
  for (size_t i = 0; i < 6; i++) c[i] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(part + SPARROW_PCONV_NR * i);
  if (pixels > 4)
    pconv_half6(K, wp, koff, px, c);
  else if (pixels > 2)
    pconv_half4(K, wp, koff, px, c);
  else if (pixels > 1)
    pconv_half2(K, wp, koff, px, c);
  else
    pconv_half1(K, wp, koff, px, c);
  if (!last) {
    for (size_t i = 0; i < 6; i++) _mm256_storeu_ps(part + SPARROW_PCONV_NR * i, c[i]);
    return;
  }
  float b[8] __attribute__((aligned(32))) = {0};
  if (bias != NULL)
    for (size_t j = 0; j < chans; j++) b[j] = bias[j];
  const __m256 b0 = _mm256_load_ps(b), vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
  float t[SPARROW_PCONV_MR][8] __attribute__((aligned(32)));
  for (size_t i = 0; i < 6; i++) _mm256_store_ps(t[i], _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(c[i], b0), vlo), vhi));
  pconv_store_tile(&t[0][0], 8, pixels, chans, y, y_plane, y_pixel);
}
#endif
