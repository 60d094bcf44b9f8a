/* Layer normalisation of one row, NEON: the sum and the squared deviations with four
 * accumulators (16 values a step), then 4, then scalar; the output pass has one loop per
 * combination of scale and bias. See rowwise.h. */
#if defined(__aarch64__)
#include <math.h>

#include "math-neon.h"
#include "rowwise.h"

static inline __attribute__((always_inline)) void normalise(size_t n, const float* x, const float* scale,
                                                            const float* bias, float mean, float r, float* y,
                                                            int has_scale, int has_bias) {
  const float32x4_t vm = vdupq_n_f32(mean);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    float32x4_t v = vmulq_n_f32(vsubq_f32(vld1q_f32(x + i), vm), r);
    if (has_scale) v = vmulq_f32(v, vld1q_f32(scale + i));
    if (has_bias) v = vaddq_f32(v, vld1q_f32(bias + i));
    vst1q_f32(y + i, v);
  }
  for (; i < n; i++) {
    float v = (x[i] - mean) * r;
    if (has_scale) v *= scale[i];
    if (has_bias) v += bias[i];
    y[i] = v;
  }
}

void sparrow_layernorm_f32_1x16__neon(size_t n, const float* x, const float* scale, const float* bias, float epsilon,
                                      float* y, float* stats) {
  float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    a0 = vaddq_f32(a0, vld1q_f32(x + i));
    a1 = vaddq_f32(a1, vld1q_f32(x + i + 4));
    a2 = vaddq_f32(a2, vld1q_f32(x + i + 8));
    a3 = vaddq_f32(a3, vld1q_f32(x + i + 12));
  }
  for (; i + 4 <= n; i += 4) a0 = vaddq_f32(a0, vld1q_f32(x + i));
  float sum = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
  for (; i < n; i++) sum += x[i];
  const float mean = sum / (float)n;
  const float32x4_t vm = vdupq_n_f32(mean);

  a0 = a1 = a2 = a3 = vdupq_n_f32(0.0f);
  for (i = 0; i + 16 <= n; i += 16) {
    const float32x4_t d0 = vsubq_f32(vld1q_f32(x + i), vm), d1 = vsubq_f32(vld1q_f32(x + i + 4), vm);
    const float32x4_t d2 = vsubq_f32(vld1q_f32(x + i + 8), vm), d3 = vsubq_f32(vld1q_f32(x + i + 12), vm);
    a0 = vfmaq_f32(a0, d0, d0);
    a1 = vfmaq_f32(a1, d1, d1);
    a2 = vfmaq_f32(a2, d2, d2);
    a3 = vfmaq_f32(a3, d3, d3);
  }
  for (; i + 4 <= n; i += 4) {
    const float32x4_t d = vsubq_f32(vld1q_f32(x + i), vm);
    a0 = vfmaq_f32(a0, d, d);
  }
  float sq = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
  for (; i < n; i++) {
    const float d = x[i] - mean;
    sq += d * d;
  }
  const float r = 1.0f / sqrtf(sq / (float)n + epsilon);
  stats[0] = mean;
  stats[1] = r;
  if (scale != NULL && bias != NULL) normalise(n, x, scale, bias, mean, r, y, 1, 1);
  else if (scale != NULL) normalise(n, x, scale, bias, mean, r, y, 1, 0);
  else if (bias != NULL) normalise(n, x, scale, bias, mean, r, y, 0, 1);
  else normalise(n, x, scale, bias, mean, r, y, 0, 0);
}
#endif
