/* Row-wise microkernels: the per-token steps of a transformer block around its matrix products.
 *
 * Every kernel works on one row of n contiguous floats (n >= 1; x and y may be the same
 * pointer, or must not overlap otherwise) and never reads or writes past x[n - 1], mask[n - 1],
 * y[n - 1] (AVX2 and AVX-512 tails use masked loads, NEON tails a small stack copy). The driver
 * (Kernels/rowwise/rows.c) runs them over many rows with strides; the list
 * (Kernels/rowwise/ukernels.inc) feeds the dispatcher, the tests and the benchmarks.
 *
 * softmax:    y = softmax(alpha * x + mask) over the row (mask NULL: none). The maximum is
 *             subtracted first; exp is a range-reduced degree-7 polynomial (Cephes' expf
 *             coefficients, measured <= 1.4 ulp in [-87, 0]), and arguments below -87.3 give
 *             exactly 0, so masked positions (mask = -3.4e38 or -inf) get 0. A NaN anywhere makes
 *             the row NaN; a row of -inf is NaN, as in ONNX Runtime.
 * gelu_erf:   y = x/2 (1 + erf(x/sqrt 2)); erf is a rational minimax approximation on [-4, 4]
 *             (as Eigen's fast erf), |error| <= 3.4e-7 evaluated in float, exactly +-1 beyond.
 * gelu_tanh:  y = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), computed as x / (1 + e^{-2u})
 *             (the same value without the cancellation of 1 + tanh near -1).
 * layernorm:  mean and variance of the row in two passes (sum, then squared deviations),
 *             y = (x - mean) / sqrt(var + epsilon) * scale + bias (scale, bias: n floats each, or
 *             NULL for ones / zeros); stats[0] = mean, stats[1] = 1 / sqrt(var + epsilon).
 *
 * The scalar kernels call libm (expf, erff): they are the portable path, not a model of the SIMD
 * ones; tests compare every kernel with a double-precision reference. */
#ifndef SPARROW_ROWWISE_H
#define SPARROW_ROWWISE_H
#include <stddef.h>

#include "sparrow_kernels.h"

typedef void (*sparrow_softmax_ukernel_fn)(size_t n, const float* x, float alpha, const float* mask, float* y);
typedef void (*sparrow_gelu_ukernel_fn)(size_t n, const float* x, float* y);
typedef void (*sparrow_layernorm_ukernel_fn)(size_t n, const float* x, const float* scale, const float* bias,
                                             float epsilon, float* y, float* stats);

#define SPARROW_ROW_DECL_SOFTMAX(fn) void fn(size_t n, const float* x, float alpha, const float* mask, float* y);
#define SPARROW_ROW_DECL_GELU_ERF(fn) void fn(size_t n, const float* x, float* y);
#define SPARROW_ROW_DECL_GELU_TANH(fn) void fn(size_t n, const float* x, float* y);
#define SPARROW_ROW_DECL_LAYERNORM(fn)                                                                        \
  void fn(size_t n, const float* x, const float* scale, const float* bias, float epsilon, float* y, float* stats);

#define SPARROW_ROW_UKERNEL(fn, OP, ISA) SPARROW_ROW_DECL_##OP(fn)
#include "ukernels.inc"
#undef SPARROW_ROW_UKERNEL

#endif
