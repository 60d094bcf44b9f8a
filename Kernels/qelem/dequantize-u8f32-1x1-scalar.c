/* DequantizeLinear per tensor, scalar (qelem.h): the definition the SIMD kernels match. */
#include "qelem.h"

void sparrow_dequantize_u8f32_1x1__scalar(size_t n, const void* a, const void* b, const sparrow_qelem_params* p,
                                          void* y) {
  (void)b;
  const uint8_t* x = (const uint8_t*)a;
  float* out = (float*)y;
  for (size_t i = 0; i < n; i++) out[i] = sparrow_qelem_dq1(x[i], p->a_flip, p->a_zero, p->a_scale);
}
