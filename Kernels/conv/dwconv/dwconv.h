/* Depthwise convolution row microkernels.
 *
 * One call computes one output row of one output channel:
 *   out[ox] = clamp(bias + sum_{t < taps} weights[t] * row[offsets[t] + ox], lo, hi),  ox < wo
 * The driver (Kernels/conv/dwconv.c) copies each input plane once into a zero-padded buffer
 * whose rows are split into stride_w phases, so that every tap (ky, kx) of an output row is a
 * contiguous run of wo floats starting at row + offsets[t]. A kernel reads exactly
 * row[offsets[t] + 0 ..< offsets[t] + wo] for each t: never past the end (AVX2 tails use
 * masked loads). The clamp keeps NaN (comparisons, not fmin/fmax). The sum runs over t in
 * order for every ox, so every ISA rounds alike up to FMA contraction. */
#ifndef SPARROW_DWCONV_H
#define SPARROW_DWCONV_H
#include <stddef.h>

#include "sparrow_kernels.h"

typedef void (*sparrow_dwconv_ukernel_fn)(size_t wo, size_t taps, const float* row, const size_t* offsets,
                                          const float* weights, float bias, float lo, float hi, float* out);

#define SPARROW_DWCONV_UKERNEL(fn, ISA)                                                                                \
  void fn(size_t wo, size_t taps, const float* row, const size_t* offsets, const float* weights, float bias, float lo, \
          float hi, float* out);
#include "ukernels.inc"
#undef SPARROW_DWCONV_UKERNEL

#endif
