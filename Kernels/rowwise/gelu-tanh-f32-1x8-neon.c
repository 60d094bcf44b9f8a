/* GELU, tanh form, NEON: x / (1 + e^{-2u}), 8 values a step, then 4, then a padded tail. See
 * rowwise.h. */
#if defined(__aarch64__)
#include "math-neon.h"
#include "rowwise.h"

static inline float32x4_t gelu4(float32x4_t v) {
  /* -2u = v (c0 + c1 v^2) with c0 = -2 sqrt(2/pi), c1 = c0 * 0.044715. */
  const float32x4_t t =
      vmulq_f32(v, vfmaq_f32(vdupq_n_f32(-1.5957691216057307f), vmulq_f32(v, v), vdupq_n_f32(-0.07135481627260025f)));
  return vdivq_f32(v, vaddq_f32(vdupq_n_f32(1.0f), sparrow_exp4_neon(t)));
}

void sparrow_gelu_tanh_f32_1x8__neon(size_t n, const float* x, float* y) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const float32x4_t a = gelu4(vld1q_f32(x + i)), b = gelu4(vld1q_f32(x + i + 4));
    vst1q_f32(y + i, a);
    vst1q_f32(y + i + 4, b);
  }
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, gelu4(vld1q_f32(x + i)));
  if (i < n) sparrow_store_tail_neon(y + i, n - i, gelu4(sparrow_load_tail_neon(x + i, n - i, 0.0f)));
}
#endif
