/* int8 add (DequantizeLinear -> Add -> QuantizeLinear), NEON, 16 values per step (qelem.h), with
 * the scalar definition's float operations; the tail runs the scalar definition. */
#if defined(__aarch64__)
#include "qelem-neon.h"

void sparrow_qadd_u8_1x16__neon(size_t n, const void* a, const void* b, const sparrow_qelem_params* p, void* y) {
  const uint8_t *xa = (const uint8_t*)a, *xb = (const uint8_t*)b;
  uint8_t* out = (uint8_t*)y;
  const uint8x16_t fa = vdupq_n_u8(p->a_flip), fb = vdupq_n_u8(p->b_flip);
  const int32x4_t za = vdupq_n_s32(p->a_zero), zb = vdupq_n_s32(p->b_zero);
  const float32x4_t sa = vdupq_n_f32(p->a_scale), sb = vdupq_n_f32(p->b_scale);
  const float32x4_t lo = vdupq_n_f32(p->lo), hi = vdupq_n_f32(p->hi);
  const sparrow_qelem_q_neon q = sparrow_qelem_q_setup_neon(p);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    float32x4_t va[4], vb[4];
    int32x4_t r[4];
    sparrow_qelem_dq16_neon(xa + i, fa, za, sa, va);
    sparrow_qelem_dq16_neon(xb + i, fb, zb, sb, vb);
    /* fmax/fmin keep a NaN sum NaN (it quantizes to the zero point), as the scalar definition. */
    for (int j = 0; j < 4; j++) r[j] = sparrow_qelem_q4_neon(vminq_f32(vmaxq_f32(vaddq_f32(va[j], vb[j]), lo), hi), &q);
    sparrow_qelem_store16_neon(out + i, r, &q);
  }
  for (; i < n; i++) out[i] = sparrow_qelem_q1(sparrow_qelem_sum1(xa[i], xb[i], p), p);
}
#endif
