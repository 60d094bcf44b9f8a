/* Depthwise row, NEON: 16 outputs (four FMA chains) per step, then 4, then scalar. */
#if defined(__aarch64__)
#include <arm_neon.h>

#include "dwconv.h"

/* vmax/vmin return NaN when either input is NaN, as the scalar clamp does. */
static inline float32x4_t clamp4(float32x4_t v, float32x4_t lo, float32x4_t hi) {
  return vminq_f32(vmaxq_f32(v, lo), hi);
}

static void one_row(size_t wo, size_t taps, const float* row, const size_t* offsets, const float* weights, float bias,
                    float lo, float hi, float* out) {
  const float32x4_t vlo = vdupq_n_f32(lo), vhi = vdupq_n_f32(hi), vb = vdupq_n_f32(bias);
  size_t ox = 0;
  for (; ox + 16 <= wo; ox += 16) {
    float32x4_t a0 = vb, a1 = vb, a2 = vb, a3 = vb;
    for (size_t t = 0; t < taps; t++) {
      const float* p = row + offsets[t] + ox;
      const float wt = weights[t];
      a0 = vfmaq_n_f32(a0, vld1q_f32(p), wt);
      a1 = vfmaq_n_f32(a1, vld1q_f32(p + 4), wt);
      a2 = vfmaq_n_f32(a2, vld1q_f32(p + 8), wt);
      a3 = vfmaq_n_f32(a3, vld1q_f32(p + 12), wt);
    }
    vst1q_f32(out + ox, clamp4(a0, vlo, vhi));
    vst1q_f32(out + ox + 4, clamp4(a1, vlo, vhi));
    vst1q_f32(out + ox + 8, clamp4(a2, vlo, vhi));
    vst1q_f32(out + ox + 12, clamp4(a3, vlo, vhi));
  }
  for (; ox + 4 <= wo; ox += 4) {
    float32x4_t a = vb;
    for (size_t t = 0; t < taps; t++) a = vfmaq_n_f32(a, vld1q_f32(row + offsets[t] + ox), weights[t]);
    vst1q_f32(out + ox, clamp4(a, vlo, vhi));
  }
  for (; ox < wo; ox++) {
    float a = bias;
    for (size_t t = 0; t < taps; t++) a = __builtin_fmaf(row[offsets[t] + ox], weights[t], a);
    out[ox] = a < lo ? lo : (a > hi ? hi : a);
  }
}

void sparrow_dwconv_f32_1x16__neon(size_t wo, size_t rows, size_t taps, const float* row, size_t row_step,
                                   const size_t* offsets, const float* weights, float bias, float lo, float hi,
                                   float* out) {
  for (size_t r = 0; r < rows; r++) one_row(wo, taps, row + r * row_step, offsets, weights, bias, lo, hi, out + r * wo);
}
#endif
