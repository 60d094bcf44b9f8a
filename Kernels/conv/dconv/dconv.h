/* Dense direct convolution microkernels (Kernels/conv/direct.c, dense mode): a k x k
 * convolution with a dense weight, multiplied straight from the padded, stride-phase-split input
 * planes (window.h) with no im2col panel at all. The weight is packed once in panels of
 * SPARROW_DCONV_MR output channels, K-major inside a panel (K = channels * kh * kw, k = (c, ky, kx)):
 *     wp[k * MR + i] = W[panel row i][k]          (rows past cout hold 0)
 * and k's input run starts at koff[k] = c * plane + tap offset, so for output row oy
 *     y[i][ox] = clamp(bias[i] + sum_k wp[k * MR + i] * row[koff[k] + ox], lo, hi),  ox < wo
 * with row = padded planes + oy * row_step. One call computes one output row of one panel; y
 * points at output channel (panel row 0, oy, 0) and y_plane floats separate output channels.
 * Only rows < `rows` are stored. A kernel reads exactly row[koff[k] + 0 ..< koff[k] + wo] for
 * each k (tails masked or scalar: never past a run). The sum runs over k in order for every
 * output (each ISA rounds alike up to FMA contraction); the clamp keeps NaN (comparisons).
 *
 * Measured where it pays (AMD EPYC Zen 3, AVX2, 1 thread, against the packed 6x16 kernel on
 * im2col panels): ResNet-18's 7x7/2 stem 2.64 vs 3.60 ms, 64-channel 3x3 at 56x56 2.94 vs 3.22,
 * the digits model's 16-channel 3x3 at 16x16 0.027 vs 0.043 ms; narrow outputs (7x7) lose
 * (a 16-pixel block is mostly tail). The planner times it against im2col per layer. */
#ifndef SPARROW_DCONV_H
#define SPARROW_DCONV_H
#include <stddef.h>

#include "sparrow_kernels.h"

#define SPARROW_DCONV_MR 6

typedef void (*sparrow_dconv_ukernel_fn)(size_t K, const float* wp, const size_t* koff, const float* row, size_t wo,
                                         size_t rows, const float* bias, float lo, float hi, float* y,
                                         size_t y_plane);

#define SPARROW_DCONV_UKERNEL(fn, ISA)                                                                          \
  void fn(size_t K, const float* wp, const size_t* koff, const float* row, size_t wo, size_t rows,             \
          const float* bias, float lo, float hi, float* y, size_t y_plane);
#include "ukernels.inc"
#undef SPARROW_DCONV_UKERNEL

#endif
