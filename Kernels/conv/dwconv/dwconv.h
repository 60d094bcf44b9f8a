/* Depthwise convolution row microkernels.
 *
 * One call computes `rows` output rows of one output channel:
 *   out[r * wo + ox] = clamp(bias + sum_{t < taps} weights[t] * row[r * row_step + offsets[t] + ox], lo, hi)
 * for r < rows, ox < wo. The driver (Kernels/conv/dwconv.c) copies each input plane, a band of
 * rows at a time, into a zero-padded buffer whose rows are split into stride_w phases, so that every tap (ky, kx) of an
 * output row is a contiguous run of wo floats starting at row + offsets[t]. A kernel reads
 * row[r * row_step + offsets[t] + 0 ..< wo] and may read up to SPARROW_DWCONV_SLACK floats past
 * such a run (whole vectors at the end of a row: the next row's values, or the slack the
 * drivers keep after their last plane), never storing those lanes. Several rows per call let a
 * kernel keep enough independent sums in flight when rows are narrow (MobileNetV2's 7- to
 * 28-wide maps: one 8-lane chain per row was FMA-latency bound). The clamp keeps NaN
 * (comparisons, not fmin/fmax). The sum runs over t in order for every output, so every ISA
 * rounds alike up to FMA contraction. */
#ifndef SPARROW_DWCONV_H
#define SPARROW_DWCONV_H
#include <stddef.h>

#include "sparrow_kernels.h"

/* Floats a kernel may read past a run (see above); drivers keep this many after their buffers. */
#define SPARROW_DWCONV_SLACK 16

typedef void (*sparrow_dwconv_ukernel_fn)(size_t wo, size_t rows, size_t taps, const float* row, size_t row_step,
                                          const size_t* offsets, const float* weights, float bias, float lo, float hi,
                                          float* out);

#define SPARROW_DWCONV_UKERNEL(fn, ISA)                                                                  \
  void fn(size_t wo, size_t rows, size_t taps, const float* row, size_t row_step, const size_t* offsets, \
          const float* weights, float bias, float lo, float hi, float* out);
#include "ukernels.inc"
#undef SPARROW_DWCONV_UKERNEL

#endif
