/* int8 add (DequantizeLinear -> Add -> QuantizeLinear), scalar (qelem.h): the definition the SIMD
 * kernels match. */
#include "qelem.h"

void sparrow_qadd_u8_1x1__scalar(size_t n, const void* a, const void* b, const sparrow_qelem_params* p, void* y) {
  const uint8_t *xa = (const uint8_t*)a, *xb = (const uint8_t*)b;
  uint8_t* out = (uint8_t*)y;
  for (size_t i = 0; i < n; i++) out[i] = sparrow_qelem_q1(sparrow_qelem_sum1(xa[i], xb[i], p), p);
}
