/* GELU, erf form, scalar (libm erff). See rowwise.h. */
#include <math.h>

#include "rowwise.h"

void sparrow_gelu_erf_f32_1x1__scalar(size_t n, const float* x, float* y) {
  for (size_t i = 0; i < n; i++) {
    const float v = x[i];
    y[i] = 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
  }
}
