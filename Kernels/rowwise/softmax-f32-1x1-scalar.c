/* Softmax of one row, scalar (libm expf). See rowwise.h. */
#include <math.h>

#include "rowwise.h"

void sparrow_softmax_f32_1x1__scalar(size_t n, const float* x, float alpha, const float* mask, float* y) {
  float m = -INFINITY;
  for (size_t i = 0; i < n; i++) {
    const float v = alpha * x[i] + (mask != NULL ? mask[i] : 0.0f);
    y[i] = v;
    m = v > m ? v : m;
  }
  /* NaN: y[i] - m is NaN for it, so the sum and every output are. */
  float sum = 0.0f;
  for (size_t i = 0; i < n; i++) {
    const float d = y[i] - m;
    const float e = d < -87.3f ? 0.0f : expf(d);
    y[i] = e;
    sum += e;
  }
  const float s = 1.0f / sum;
  for (size_t i = 0; i < n; i++) y[i] *= s;
}
