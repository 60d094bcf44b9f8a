/* Depthwise row, portable C. Tap-major so that compilers can vectorise the inner loop with the
 * baseline ISA; the per-ox sum order is still t = 0, 1, ... (see dwconv.h). */
#include "dwconv.h"

static void one_row(size_t wo, size_t taps, const float* row, const size_t* offsets, const float* weights, float bias,
                    float lo, float hi, float* out) {
  for (size_t ox = 0; ox < wo; ox++) out[ox] = bias;
  for (size_t t = 0; t < taps; t++) {
    const float wt = weights[t];
    const float* in = row + offsets[t];
    for (size_t ox = 0; ox < wo; ox++) out[ox] += wt * in[ox];
  }
  for (size_t ox = 0; ox < wo; ox++) {
    const float v = out[ox];
    out[ox] = v < lo ? lo : (v > hi ? hi : v);
  }
}

void sparrow_dwconv_f32_1x1__scalar(size_t wo, size_t rows, size_t taps, const float* row, size_t row_step,
                                    const size_t* offsets, const float* weights, float bias, float lo, float hi,
                                    float* out) {
  for (size_t r = 0; r < rows; r++) one_row(wo, taps, row + r * row_step, offsets, weights, bias, lo, hi, out + r * wo);
}
