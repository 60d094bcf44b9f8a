/* GELU, tanh form, scalar (libm expf): x / (1 + e^{-2u}). See rowwise.h. */
#include <math.h>

#include "rowwise.h"

void sparrow_gelu_tanh_f32_1x1__scalar(size_t n, const float* x, float* y) {
  for (size_t i = 0; i < n; i++) {
    const float v = x[i];
    const float u = v * (0.79788456080286536f + 0.035677408136300125f * v * v);
    const float t = -2.0f * u;
    y[i] = v / (1.0f + expf(t > 88.0f ? 88.0f : t));
  }
}
