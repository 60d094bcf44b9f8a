/* GELU, erf form, NEON: 8 values a step, then 4, then a padded tail. See rowwise.h. */
#if defined(__aarch64__)
#include "math-neon.h"
#include "rowwise.h"

static inline float32x4_t gelu4(float32x4_t v) {
  const float32x4_t h = vmulq_n_f32(v, 0.5f);
  return vfmaq_f32(h, h, sparrow_erf4_neon(vmulq_n_f32(v, 0.70710678118654752f)));
}

void sparrow_gelu_erf_f32_1x8__neon(size_t n, const float* x, float* y) {
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
