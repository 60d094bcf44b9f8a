/* Pixel-major dense direct convolution, scalar: 6 pixels x 16 output channels (dconv.h); only the
 * block's `chans` channels are summed. */
#include "dconv.h"

#include "../../common/common.h"

void sparrow_pconv_f32_6x16__scalar(size_t K, const float* wp, const size_t* koff, const float* const* px,
                                    size_t pixels, size_t chans, const float* bias, float lo, float hi, float* y,
                                    size_t y_plane, size_t y_pixel, float* part, int first, int last) {
  float acc[SPARROW_PCONV_MR][SPARROW_PCONV_NR] = {{0}};
  if (!first)
    for (size_t i = 0; i < SPARROW_PCONV_MR; i++)
      for (size_t j = 0; j < SPARROW_PCONV_NR; j++) acc[i][j] = part[i * SPARROW_PCONV_NR + j];
  const size_t nj = chans < SPARROW_PCONV_NR ? chans : SPARROW_PCONV_NR;
  for (size_t k = 0; k < K; k++) {
    const float* w = wp + k * SPARROW_PCONV_NR;
    for (size_t i = 0; i < pixels; i++) {
      const float x = px[i][koff[k]];
      for (size_t j = 0; j < nj; j++) acc[i][j] += x * w[j];
    }
  }
  if (!last) {
    for (size_t i = 0; i < SPARROW_PCONV_MR; i++)
      for (size_t j = 0; j < SPARROW_PCONV_NR; j++) part[i * SPARROW_PCONV_NR + j] = acc[i][j];
    return;
  }
  for (size_t j = 0; j < chans; j++) {
    const float b = bias != NULL ? bias[j] : 0.0f;
    for (size_t i = 0; i < pixels; i++) y[j * y_plane + i * y_pixel] = sparrow_clampf(acc[i][j] + b, lo, hi);
  }
}
