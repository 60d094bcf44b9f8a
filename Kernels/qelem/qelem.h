/* Quantized element-wise kernels (public contract: include/sparrow_qgemm.h, sparrow_qelem_*):
 * QuantizeLinear, DequantizeLinear and the int8 add of a fused DequantizeLinear -> Add (-> Relu)
 * -> QuantizeLinear (ONNX Runtime's QLinearAdd), per tensor, over n contiguous elements.
 *
 * Every value is handled in the uint8 domain: int8 data is read and written with its sign bit
 * flipped (x ^ 0x80, zero point + 128), so one kernel serves both types. The scalar functions
 * below are the definition; the SIMD kernels compute the same float32 operations in the same
 * order (a division by the output scale, not a multiplication by its inverse, as ONNX and MLAS),
 * so every ISA gives the same bits, and the same bits as the unfused graph:
 *   dequantize  y = float((x ^ a_flip) - a_zero) * a_scale
 *   quantize    y = (clamp(round_half_even(x / y_scale), -y_zero, 255 - y_zero) + y_zero) ^ y_flip,
 *               a NaN quotient giving the zero point (as Sparrow's QuantizeLinear step)
 *   add         s = clamp(dequantize_a(a) + dequantize_b(b), lo, hi), then quantize(s)
 * Kernels never read or write past element n - 1 (SIMD tails run the scalar functions). */
#ifndef SPARROW_QELEM_H
#define SPARROW_QELEM_H
#include <math.h>

#include "sparrow_qgemm.h"

/* a * b + c must stay two roundings, as in the unfused graph: no FMA contraction here (clang's
 * default contracts within an expression; GCC's ISO modes, -std=c11 as the NEON driver builds,
 * do not contract). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

typedef void (*sparrow_qelem_fn)(size_t n, const void* a, const void* b, const sparrow_qelem_params* p, void* y);

static inline float sparrow_qelem_dq1(uint8_t x, uint8_t flip, int32_t zero, float scale) {
  return (float)((int32_t)(uint8_t)(x ^ flip) - zero) * scale;
}

static inline uint8_t sparrow_qelem_q1(float x, const sparrow_qelem_params* p) {
  float v = x / p->y_scale;
  if (v != v) v = 0;
  const float lo = (float)-p->y_zero, hi = (float)(255 - p->y_zero);
  v = v < lo ? lo : v;
  v = v > hi ? hi : v;
  return (uint8_t)((uint8_t)((int32_t)nearbyintf(v) + p->y_zero) ^ p->y_flip);
}

static inline float sparrow_qelem_sum1(uint8_t a, uint8_t b, const sparrow_qelem_params* p) {
  const float va = sparrow_qelem_dq1(a, p->a_flip, p->a_zero, p->a_scale);
  const float vb = sparrow_qelem_dq1(b, p->b_flip, p->b_zero, p->b_scale);
  float s = va + vb;
  s = s < p->lo ? p->lo : s;
  s = s > p->hi ? p->hi : s;
  return s;
}
#endif
