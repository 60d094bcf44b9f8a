/* Dense direct convolution, scalar: 6 output channels x 4 pixels per step (dconv.h). */
#include "dconv.h"

#include "../../common/common.h"

void sparrow_dconv_f32_6x4__scalar(size_t K, const float* wp, const size_t* koff, const float* row, size_t wo,
                                   size_t rows, const float* bias, float lo, float hi, float* y, size_t y_plane,
                                   int first, int last) {
  for (size_t ox = 0; ox < wo; ox += 4) {
    const size_t cols = wo - ox < 4 ? wo - ox : 4;
    float acc[SPARROW_DCONV_MR][4] = {{0}};
    if (!first)
      for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++) acc[i][j] = y[i * y_plane + ox + j];
    for (size_t k = 0; k < K; k++) {
      const float* x = row + koff[k] + ox;
      const float* w = wp + k * SPARROW_DCONV_MR;
      for (size_t i = 0; i < SPARROW_DCONV_MR; i++)
        for (size_t j = 0; j < cols; j++) acc[i][j] += w[i] * x[j];
    }
    for (size_t i = 0; i < rows; i++) {
      const float b = bias != NULL ? bias[i] : 0.0f;
      for (size_t j = 0; j < cols; j++)
        y[i * y_plane + ox + j] = last ? sparrow_clampf(acc[i][j] + b, lo, hi) : acc[i][j];
    }
  }
}
