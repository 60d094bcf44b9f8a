/* Pixel-major dense direct convolution, AVX2/FMA: 6 pixels x 16 output channels (dconv.h). Per
 * k two 8-channel weight loads and six pixel broadcasts feed 12 accumulators; the block is then
 * biased and clamped in registers and stored transposed (16 channel rows of up to 6 pixels)
 * through a stack tile. A block of at most 8 channels (a narrow layer, the last panel of one,
 * rows gathered by the gate) runs half the kernel (pconv-half-x86.h): the same sums in the same
 * order for the lanes it keeps. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "dconv.h"

#define T __attribute__((target("avx2,fma")))

#include "pconv-half-x86.h"

/* The K loop for the first NP pixels (a short last block skips the others' FMAs). */
#define PBLOCK(NAME, NP)                                                                                           \
  static inline T void NAME(size_t K, const float* wp, const size_t* koff, const float* const* px, __m256 c[12]) { \
    const float *p0 = px[0], *p1 = px[1], *p2 = px[2], *p3 = px[3], *p4 = px[4], *p5 = px[5];                      \
    __m256 c00 = c[0], c01 = c[1], c10 = c[2], c11 = c[3], c20 = c[4], c21 = c[5];                                 \
    __m256 c30 = c[6], c31 = c[7], c40 = c[8], c41 = c[9], c50 = c[10], c51 = c[11];                               \
    _Pragma("clang loop unroll_count(4)") for (size_t k = 0; k < K; k++) {                                         \
      const size_t o = koff[k];                                                                                    \
      const __m256 w0 = _mm256_load_ps(wp + k * SPARROW_PCONV_NR);                                                 \
      const __m256 w1 = _mm256_load_ps(wp + k * SPARROW_PCONV_NR + 8);                                             \
      __m256 x = _mm256_broadcast_ss(p0 + o);                                                                      \
      c00 = _mm256_fmadd_ps(x, w0, c00);                                                                           \
      c01 = _mm256_fmadd_ps(x, w1, c01);                                                                           \
      if ((NP) > 1) {                                                                                              \
        x = _mm256_broadcast_ss(p1 + o);                                                                           \
        c10 = _mm256_fmadd_ps(x, w0, c10);                                                                         \
        c11 = _mm256_fmadd_ps(x, w1, c11);                                                                         \
      }                                                                                                            \
      if ((NP) > 2) {                                                                                              \
        x = _mm256_broadcast_ss(p2 + o);                                                                           \
        c20 = _mm256_fmadd_ps(x, w0, c20);                                                                         \
        c21 = _mm256_fmadd_ps(x, w1, c21);                                                                         \
      }                                                                                                            \
      if ((NP) > 3) {                                                                                              \
        x = _mm256_broadcast_ss(p3 + o);                                                                           \
        c30 = _mm256_fmadd_ps(x, w0, c30);                                                                         \
        c31 = _mm256_fmadd_ps(x, w1, c31);                                                                         \
      }                                                                                                            \
      if ((NP) > 4) {                                                                                              \
        x = _mm256_broadcast_ss(p4 + o);                                                                           \
        c40 = _mm256_fmadd_ps(x, w0, c40);                                                                         \
        c41 = _mm256_fmadd_ps(x, w1, c41);                                                                         \
      }                                                                                                            \
      if ((NP) > 5) {                                                                                              \
        x = _mm256_broadcast_ss(p5 + o);                                                                           \
        c50 = _mm256_fmadd_ps(x, w0, c50);                                                                         \
        c51 = _mm256_fmadd_ps(x, w1, c51);                                                                         \
      }                                                                                                            \
    }                                                                                                              \
    c[0] = c00, c[1] = c01, c[2] = c10, c[3] = c11, c[4] = c20, c[5] = c21;                                        \
    c[6] = c30, c[7] = c31, c[8] = c40, c[9] = c41, c[10] = c50, c[11] = c51;                                      \
  }
PBLOCK(block6, 6)
PBLOCK(block4, 4)
PBLOCK(block2, 2)
PBLOCK(block1, 1)
#undef PBLOCK

T void sparrow_pconv_f32_6x16__avx2(size_t K, const float* wp, const size_t* koff, const float* const* px,
                                    size_t pixels, size_t chans, const float* bias, float lo, float hi, float* y,
                                    size_t y_plane, size_t y_pixel, float* part, int first, int last) {
  if (chans <= 8) {
    pconv_half_panel(K, wp, koff, px, pixels, chans, bias, lo, hi, y, y_plane, y_pixel, part, first, last);
    return;
  }
  __m256 c[12];
  for (size_t i = 0; i < 12; i++) c[i] = first ? _mm256_setzero_ps() : _mm256_load_ps(part + 8 * i);
  if (pixels > 4)
    block6(K, wp, koff, px, c);
  else if (pixels > 2)
    block4(K, wp, koff, px, c);
  else if (pixels > 1)
    block2(K, wp, koff, px, c);
  else
    block1(K, wp, koff, px, c);
  if (!last) {
    for (size_t i = 0; i < 12; i++) _mm256_store_ps(part + 8 * i, c[i]);
    return;
  }
  float b[SPARROW_PCONV_NR] __attribute__((aligned(32))) = {0};
  if (bias != NULL)
    for (size_t j = 0; j < chans; j++) b[j] = bias[j];
  const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
  const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
  if (y_plane == 1 && chans == SPARROW_PCONV_NR) {
    /* Row-major output (a linear layer): each pixel's 16 channels are one run. */
    for (size_t i = 0; i < pixels; i++) {
      _mm256_storeu_ps(y + i * y_pixel, _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(c[2 * i], b0), vlo), vhi));
      _mm256_storeu_ps(y + i * y_pixel + 8, _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(c[2 * i + 1], b1), vlo), vhi));
    }
    return;
  }
  float t[SPARROW_PCONV_MR][SPARROW_PCONV_NR] __attribute__((aligned(32)));
#define STORE(i, a0, a1)                                                                \
  _mm256_store_ps(t[i], _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(a0, b0), vlo), vhi)); \
  _mm256_store_ps(t[i] + 8, _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(a1, b1), vlo), vhi));
  STORE(0, c[0], c[1])
  STORE(1, c[2], c[3])
  STORE(2, c[4], c[5])
  STORE(3, c[6], c[7])
  STORE(4, c[8], c[9])
  STORE(5, c[10], c[11])
#undef STORE
  pconv_store_tile(&t[0][0], SPARROW_PCONV_NR, pixels, chans, y, y_plane, y_pixel);
}
#endif
