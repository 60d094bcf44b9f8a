/* QuantizeLinear per tensor, NEON, 16 values per step (qelem.h); the tail runs the scalar
 * definition. */
#if defined(__aarch64__)
#include "qelem-neon.h"

void sparrow_quantize_f32u8_1x16__neon(size_t n, const void* a, const void* b, const sparrow_qelem_params* p, void* y) {
  (void)b;
  const float* x = (const float*)a;
  uint8_t* out = (uint8_t*)y;
  const sparrow_qelem_q_neon q = sparrow_qelem_q_setup_neon(p);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    int32x4_t r[4];
    for (int j = 0; j < 4; j++) r[j] = sparrow_qelem_q4_neon(vld1q_f32(x + i + 4 * j), &q);
    sparrow_qelem_store16_neon(out + i, r, &q);
  }
  for (; i < n; i++) out[i] = sparrow_qelem_q1(x[i], p);
}
#endif
