/* Layer normalisation of one row, scalar: two passes for the statistics. See rowwise.h. */
#include <math.h>

#include "rowwise.h"

void sparrow_layernorm_f32_1x1__scalar(size_t n, const float* x, const float* scale, const float* bias,
                                       float epsilon, float* y, float* stats) {
  float sum = 0.0f;
  for (size_t i = 0; i < n; i++) sum += x[i];
  const float mean = sum / (float)n;
  float sq = 0.0f;
  for (size_t i = 0; i < n; i++) {
    const float d = x[i] - mean;
    sq += d * d;
  }
  const float r = 1.0f / sqrtf(sq / (float)n + epsilon);
  stats[0] = mean;
  stats[1] = r;
  for (size_t i = 0; i < n; i++) {
    float v = (x[i] - mean) * r;
    if (scale != NULL) v *= scale[i];
    if (bias != NULL) v += bias[i];
    y[i] = v;
  }
}
