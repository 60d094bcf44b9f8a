/* NEON helpers of the quantized element-wise kernels (qelem.h): the scalar definition's float
 * operations 4 lanes wide; fcvtns rounds to nearest, ties to even, as nearbyintf. */
#ifndef SPARROW_QELEM_NEON_H
#define SPARROW_QELEM_NEON_H
#if defined(__aarch64__)
#include <arm_neon.h>

#include "qelem.h"

/* 16 bytes at x dequantized into d[0..3]: float((x ^ flip) - zero) * scale. */
static inline void sparrow_qelem_dq16_neon(const uint8_t* x, uint8x16_t flip, int32x4_t zero, float32x4_t scale,
                                           float32x4_t d[4]) {
  const uint8x16_t b = veorq_u8(vld1q_u8(x), flip);
  const uint16x8_t lo = vmovl_u8(vget_low_u8(b)), hi = vmovl_u8(vget_high_u8(b));
  const uint32x4_t w[4] = {vmovl_u16(vget_low_u16(lo)), vmovl_u16(vget_high_u16(lo)), vmovl_u16(vget_low_u16(hi)),
                           vmovl_u16(vget_high_u16(hi))};
  for (int j = 0; j < 4; j++) d[j] = vmulq_f32(vcvtq_f32_s32(vsubq_s32(vreinterpretq_s32_u32(w[j]), zero)), scale);
}

typedef struct {
  float32x4_t scale, lo, hi;
  int32x4_t zero;
  uint8x16_t flip;
} sparrow_qelem_q_neon;

static inline sparrow_qelem_q_neon sparrow_qelem_q_setup_neon(const sparrow_qelem_params* p) {
  sparrow_qelem_q_neon q;
  q.scale = vdupq_n_f32(p->y_scale);
  q.lo = vdupq_n_f32((float)-p->y_zero);
  q.hi = vdupq_n_f32((float)(255 - p->y_zero));
  q.zero = vdupq_n_s32(p->y_zero);
  q.flip = vdupq_n_u8(p->y_flip);
  return q;
}

/* One group: v / scale, NaN to 0, clamped, rounded, plus the zero point (0..255 as int32). */
static inline int32x4_t sparrow_qelem_q4_neon(float32x4_t x, const sparrow_qelem_q_neon* q) {
  float32x4_t v = vdivq_f32(x, q->scale);
  v = vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(v), vceqq_f32(v, v)));
  v = vminq_f32(vmaxq_f32(v, q->lo), q->hi);
  return vaddq_s32(vcvtnq_s32_f32(v), q->zero);
}

/* 16 quantized values (4 groups of 4, in order, within 0..255) stored at y. */
static inline void sparrow_qelem_store16_neon(uint8_t* y, const int32x4_t r[4], const sparrow_qelem_q_neon* q) {
  const int16x8_t lo = vcombine_s16(vmovn_s32(r[0]), vmovn_s32(r[1]));
  const int16x8_t hi = vcombine_s16(vmovn_s32(r[2]), vmovn_s32(r[3]));
  vst1q_u8(y, veorq_u8(vcombine_u8(vqmovun_s16(lo), vqmovun_s16(hi)), q->flip));
}

#endif
#endif
