/* Softmax of one row, NEON: three passes (alpha * x + mask and its maximum; exp and the sum;
 * the scaling), 8 values a step, then 4, then a padded tail. See rowwise.h. */
#if defined(__aarch64__)
#include <math.h>

#include "math-neon.h"
#include "rowwise.h"

void sparrow_softmax_f32_1x8__neon(size_t n, const float* x, float alpha, const float* mask, float* y) {
  const float32x4_t ninf = vdupq_n_f32(-INFINITY);
  float32x4_t m0 = ninf, m1 = ninf;
  size_t i = 0;
  if (mask != NULL) {
    for (; i + 8 <= n; i += 8) {
      const float32x4_t v0 = vfmaq_n_f32(vld1q_f32(mask + i), vld1q_f32(x + i), alpha);
      const float32x4_t v1 = vfmaq_n_f32(vld1q_f32(mask + i + 4), vld1q_f32(x + i + 4), alpha);
      vst1q_f32(y + i, v0);
      vst1q_f32(y + i + 4, v1);
      m0 = vmaxq_f32(m0, v0);
      m1 = vmaxq_f32(m1, v1);
    }
    for (; i + 4 <= n; i += 4) {
      const float32x4_t v = vfmaq_n_f32(vld1q_f32(mask + i), vld1q_f32(x + i), alpha);
      vst1q_f32(y + i, v);
      m0 = vmaxq_f32(m0, v);
    }
  } else {
    for (; i + 8 <= n; i += 8) {
      const float32x4_t v0 = vmulq_n_f32(vld1q_f32(x + i), alpha), v1 = vmulq_n_f32(vld1q_f32(x + i + 4), alpha);
      vst1q_f32(y + i, v0);
      vst1q_f32(y + i + 4, v1);
      m0 = vmaxq_f32(m0, v0);
      m1 = vmaxq_f32(m1, v1);
    }
    for (; i + 4 <= n; i += 4) {
      const float32x4_t v = vmulq_n_f32(vld1q_f32(x + i), alpha);
      vst1q_f32(y + i, v);
      m0 = vmaxq_f32(m0, v);
    }
  }
  const size_t rest = n - i;
  if (rest > 0) {
    /* Padding lanes are -inf: they change neither the maximum nor, below, the sum. */
    float32x4_t v = vmulq_n_f32(sparrow_load_tail_neon(x + i, rest, 0.0f), alpha);
    if (mask != NULL) v = vaddq_f32(v, sparrow_load_tail_neon(mask + i, rest, 0.0f));
    sparrow_store_tail_neon(y + i, rest, v);
    m0 = vmaxq_f32(m0, vbslq_f32(vcltq_u32(vld1q_u32((const uint32_t[]){0, 1, 2, 3}), vdupq_n_u32((uint32_t)rest)), v, ninf));
  }
  const float32x4_t vm = vdupq_n_f32(vmaxvq_f32(vmaxq_f32(m0, m1)));

  float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0;
  for (i = 0; i + 8 <= n; i += 8) {
    const float32x4_t e0 = sparrow_exp4_neon(vsubq_f32(vld1q_f32(y + i), vm));
    const float32x4_t e1 = sparrow_exp4_neon(vsubq_f32(vld1q_f32(y + i + 4), vm));
    vst1q_f32(y + i, e0);
    vst1q_f32(y + i + 4, e1);
    s0 = vaddq_f32(s0, e0);
    s1 = vaddq_f32(s1, e1);
  }
  for (; i + 4 <= n; i += 4) {
    const float32x4_t e = sparrow_exp4_neon(vsubq_f32(vld1q_f32(y + i), vm));
    vst1q_f32(y + i, e);
    s0 = vaddq_f32(s0, e);
  }
  if (rest > 0) {
    const float32x4_t e = sparrow_exp4_neon(vsubq_f32(sparrow_load_tail_neon(y + i, rest, -INFINITY), vm));
    sparrow_store_tail_neon(y + i, rest, e);
    s1 = vaddq_f32(s1, e);
  }
  const float s = 1.0f / vaddvq_f32(vaddq_f32(s0, s1));

  for (i = 0; i + 4 <= n; i += 4) vst1q_f32(y + i, vmulq_n_f32(vld1q_f32(y + i), s));
  for (; i < n; i++) y[i] *= s;
}
#endif
