/* DequantizeLinear per tensor, NEON, 16 values per step (qelem.h); the tail runs the scalar
 * definition. */
#if defined(__aarch64__)
#include "qelem-neon.h"

void sparrow_dequantize_u8f32_1x16__neon(size_t n, const void* a, const void* b, const sparrow_qelem_params* p,
                                         void* y) {
  (void)b;
  const uint8_t* x = (const uint8_t*)a;
  float* out = (float*)y;
  const uint8x16_t flip = vdupq_n_u8(p->a_flip);
  const int32x4_t zero = vdupq_n_s32(p->a_zero);
  const float32x4_t scale = vdupq_n_f32(p->a_scale);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    float32x4_t d[4];
    sparrow_qelem_dq16_neon(x + i, flip, zero, scale, d);
    for (int j = 0; j < 4; j++) vst1q_f32(out + i + 4 * j, d[j]);
  }
  for (; i < n; i++) out[i] = sparrow_qelem_dq1(x[i], p->a_flip, p->a_zero, p->a_scale);
}
#endif
