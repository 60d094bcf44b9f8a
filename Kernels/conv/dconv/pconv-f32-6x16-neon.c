/* Pixel-major dense direct convolution, NEON: 6 pixels x 16 output channels (dconv.h), 24
 * accumulators; per k four 4-channel weight loads and six pixel values, each multiplied into
 * its four channel vectors. Biased and clamped in registers, stored transposed through a tile.
 * A block of at most 8 channels computes two of the four vectors per pixel (the same sums). */
#if defined(__aarch64__)
#include <arm_neon.h>

#include "dconv.h"

void sparrow_pconv_f32_6x16__neon(size_t K, const float* wp, const size_t* koff, const float* const* px, size_t pixels,
                                  size_t chans, const float* bias, float lo, float hi, float* y, size_t y_plane,
                                  size_t y_pixel, float* part, int first, int last) {
  float32x4_t a[SPARROW_PCONV_MR][4];
  for (size_t i = 0; i < SPARROW_PCONV_MR; i++)
    for (size_t v = 0; v < 4; v++) a[i][v] = first ? vdupq_n_f32(0.0f) : vld1q_f32(part + i * SPARROW_PCONV_NR + 4 * v);
  if (chans <= 8) {
    for (size_t k = 0; k < K; k++) {
      const size_t o = koff[k];
      const float* w = wp + k * SPARROW_PCONV_NR;
      const float32x4_t w0 = vld1q_f32(w), w1 = vld1q_f32(w + 4);
      for (size_t i = 0; i < SPARROW_PCONV_MR; i++) {
        const float x = px[i][o];
        a[i][0] = vfmaq_n_f32(a[i][0], w0, x), a[i][1] = vfmaq_n_f32(a[i][1], w1, x);
      }
    }
  } else {
    for (size_t k = 0; k < K; k++) {
      const size_t o = koff[k];
      const float* w = wp + k * SPARROW_PCONV_NR;
      const float32x4_t w0 = vld1q_f32(w), w1 = vld1q_f32(w + 4), w2 = vld1q_f32(w + 8), w3 = vld1q_f32(w + 12);
      for (size_t i = 0; i < SPARROW_PCONV_MR; i++) {
        const float x = px[i][o];
        a[i][0] = vfmaq_n_f32(a[i][0], w0, x), a[i][1] = vfmaq_n_f32(a[i][1], w1, x);
        a[i][2] = vfmaq_n_f32(a[i][2], w2, x), a[i][3] = vfmaq_n_f32(a[i][3], w3, x);
      }
    }
  }
  if (!last) {
    for (size_t i = 0; i < SPARROW_PCONV_MR; i++)
      for (size_t v = 0; v < 4; v++) vst1q_f32(part + i * SPARROW_PCONV_NR + 4 * v, a[i][v]);
    return;
  }
  float b[SPARROW_PCONV_NR] = {0};
  if (bias != NULL)
    for (size_t j = 0; j < chans; j++) b[j] = bias[j];
  const float32x4_t vlo = vdupq_n_f32(lo), vhi = vdupq_n_f32(hi);
  if (y_plane == 1 && chans == SPARROW_PCONV_NR) {
    /* Row-major output (a linear layer): each pixel's 16 channels are one run. */
    for (size_t i = 0; i < pixels; i++)
      for (size_t v = 0; v < 4; v++)
        vst1q_f32(y + i * y_pixel + 4 * v, vminq_f32(vmaxq_f32(vaddq_f32(a[i][v], vld1q_f32(b + 4 * v)), vlo), vhi));
    return;
  }
  float t[SPARROW_PCONV_MR][SPARROW_PCONV_NR];
  for (size_t i = 0; i < SPARROW_PCONV_MR; i++)
    for (size_t v = 0; v < 4; v++)
      vst1q_f32(t[i] + 4 * v, vminq_f32(vmaxq_f32(vaddq_f32(a[i][v], vld1q_f32(b + 4 * v)), vlo), vhi));
  for (size_t j = 0; j < chans; j++)
    for (size_t i = 0; i < pixels; i++) y[j * y_plane + i * y_pixel] = t[i][j];
}
#endif
