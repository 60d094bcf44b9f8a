/* QuantizeLinear per tensor, scalar (qelem.h): the definition the SIMD kernels match. */
#include "qelem.h"

void sparrow_quantize_f32u8_1x1__scalar(size_t n, const void* a, const void* b, const sparrow_qelem_params* p,
                                        void* y) {
  (void)b;
  const float* x = (const float*)a;
  uint8_t* out = (uint8_t*)y;
  for (size_t i = 0; i < n; i++) out[i] = sparrow_qelem_q1(x[i], p);
}
