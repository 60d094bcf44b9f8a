/* Dense direct convolution microkernels (Kernels/conv/direct.c, dense mode): a k x k
 * convolution with a dense weight, multiplied straight from the padded, stride-phase-split input
 * planes (window.h) with no im2col panel at all. The weight is packed once in panels of
 * SPARROW_DCONV_MR output channels, K-major inside a panel (K = channels * kh * kw, k = (c, ky, kx)):
 *     wp[k * MR + i] = W[panel row i][k]          (rows past cout hold 0)
 * and k's input run starts at koff[k] = c * plane + tap offset, so for output row oy
 *     y[i][ox] = clamp(bias[i] + sum_k wp[k * MR + i] * row[koff[k] + ox], lo, hi),  ox < wo
 * with row = padded planes + oy * row_step. One call computes one output row of one panel over
 * a slice of K (wp, koff and K are the slice's: the driver splits K by input channels so that
 * the input rows an output row reads stay in L1); y points at output channel (panel row 0, oy,
 * 0) and y_plane floats separate output channels. `first`: the sums start at 0, else at what y
 * holds (the earlier slices' partial sums); `last`: bias and clamp are applied, else the
 * partial sums are stored as they are. Only rows < `rows` are read and stored. A kernel reads row[koff[k] + 0 ..<
 * koff[k] + wo] for each k and may read up to 15 floats past it (whole vectors at the end of a row: the next row's
 * values, or the SPARROW_DCONV_SLACK floats the workspace keeps after the last plane), never
 * storing those lanes. The sum runs over k in order for every
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
/* Floats a kernel may read past a run (see above). */
#define SPARROW_DCONV_SLACK 16

typedef void (*sparrow_dconv_ukernel_fn)(size_t K, const float* wp, const size_t* koff, const float* row, size_t wo,
                                         size_t rows, const float* bias, float lo, float hi, float* y, size_t y_plane,
                                         int first, int last);

#define SPARROW_DCONV_UKERNEL(fn, ISA)                                                                                \
  void fn(size_t K, const float* wp, const size_t* koff, const float* row, size_t wo, size_t rows, const float* bias, \
          float lo, float hi, float* y, size_t y_plane, int first, int last);
#include "ukernels.inc"
#undef SPARROW_DCONV_UKERNEL

/* Pixel-major dense direct convolution (direct.c's pixel mode): the same padded planes, the
 * roles turned around. Output pixels are the broadcast side and output channels the vector
 * side, so narrow maps (7x7, 14x14) and strided layers leave no lanes idle: a block is 6
 * pixels of the flattened output grid (p = oy * wo + ox, consecutive, across row ends) by
 * SPARROW_PCONV_NR output channels. The weight is packed in panels of NR output channels,
 * K-major inside a panel:
 *     wp[k * NR + j] = W[panel channel j][k]          (channels past cout hold 0)
 * px[i] is pixel i's window origin in the planes (planes + oy * row_step + ox), so
 *     y[j * y_plane + i * y_pixel] = clamp(bias[j] + sum_k wp[k * NR + j] * px[i][koff[k]], lo, hi)
 * for i < pixels (<= SPARROW_PCONV_MR) and j < chans (<= NR); y points at (channel 0, pixel 0)
 * of the block. px holds SPARROW_PCONV_MR valid pointers (the driver repeats the last pixel
 * past `pixels`; those sums are computed and dropped); kernels read px[i][koff[k]] only, bias
 * (NULL: none) only below chans, and store nothing else. The sum runs over k in order (the
 * AVX-512 kernel, blocks of more than 8 channels: even and odd k in two chains, added at the
 * end; rounding differs). A block of at most 8 channels may sum lanes 0..7 alone (about 1.5x
 * faster: a gated layer's kept rows, narrow layers' last panels). K may come in slices (the
 * driver keeps a slice of the weight panel in L1 while the pixel blocks pass): `part` is the
 * block's MR x NR partial sums, pixel-major, 32-byte aligned (for the same chans every slice);
 * `first`: the sums start at 0, else at part; `last`: bias, clamp and the store to y, else the
 * sums go to part and y is untouched (part may be NULL when first and last). A convolution
 * stores channel planes (y_pixel 1); a linear layer (plinear.c: px[i] is token row i, koff[k]
 * its column) stores token rows (y_plane 1, y_pixel the row stride).
 *
 * Measured (AMD EPYC Zen 3, AVX2, 1 thread, C harness, ResNet-18 shapes): 7x7/2 stem 2.7 ms
 * (88 GF/s; the channel-major 6x16 above 3.4), 3x3 at 28x28 x 128 2.5 ms (93 GF/s; im2col +
 * OpenBLAS 3.4), at 7x7 x 512 2.9-3.3 ms (the packed GEMM on im2col 4.2). */
#define SPARROW_PCONV_MR 6
#define SPARROW_PCONV_NR 16

typedef void (*sparrow_pconv_ukernel_fn)(size_t K, const float* wp, const size_t* koff, const float* const* px,
                                         size_t pixels, size_t chans, const float* bias, float lo, float hi, float* y,
                                         size_t y_plane, size_t y_pixel, float* part, int first, int last);

/* Where panel range r of `ranges` starts (r = ranges: the end). With kernels that take `group`
 * adjacent panels per call (2 or 4, else 1), ranges split groups, never one. */
static inline size_t sparrow_panel_range_start(size_t panels, size_t r, size_t ranges, size_t group) {
  const size_t b = group * (((panels + group - 1) / group) * r / ranges);
  return b < panels ? b : panels;
}

/* Several adjacent panels in one call (where an ISA has such kernels: pukernels.inc's
 * SPARROW_PCONV_WIDE entries, a two-panel and a four-panel function): panel g's weights start
 * g * wstride floats after panel 0's (wstride is the whole panel's K * NR, also when K comes in
 * slices), chans <= panels * NR counts the channels of all (panel g's are chans - g * NR, at
 * most NR; every panel but the last is full), bias covers them, y's channel j is y + j * y_plane
 * as above, and part holds panels * MR x NR partial sums (panel 0's block, then panel 1's ...). */
typedef void (*sparrow_pconv_wide_fn)(size_t K, const float* wp, size_t wstride, const size_t* koff,
                                      const float* const* px, size_t pixels, size_t chans, const float* bias, float lo,
                                      float hi, float* y, size_t y_plane, size_t y_pixel, float* part, int first,
                                      int last);

/* One call over `span` (1, 2 or 4) adjacent panels: the one-panel kernel f1, or the entry's wide
 * kernel f2 / f4 (wstride unused for one panel). */
static inline void sparrow_pconv_call(size_t span, sparrow_pconv_ukernel_fn f1, sparrow_pconv_wide_fn f2,
                                      sparrow_pconv_wide_fn f4, size_t K, const float* wp, size_t wstride,
                                      const size_t* koff, const float* const* px, size_t pixels, size_t chans,
                                      const float* bias, float lo, float hi, float* y, size_t y_plane, size_t y_pixel,
                                      float* part, int first, int last) {
  if (span == 1)
    f1(K, wp, koff, px, pixels, chans, bias, lo, hi, y, y_plane, y_pixel, part, first, last);
  else
    (span == 4 ? f4 : f2)(K, wp, wstride, koff, px, pixels, chans, bias, lo, hi, y, y_plane, y_pixel, part, first,
                          last);
}

#define SPARROW_PCONV_UKERNEL(fn, ISA)                                                                             \
  void fn(size_t K, const float* wp, const size_t* koff, const float* const* px, size_t pixels, size_t chans,      \
          const float* bias, float lo, float hi, float* y, size_t y_plane, size_t y_pixel, float* part, int first, \
          int last);
#define SPARROW_PCONV_WIDE_DECL(fn)                                                                                   \
  void fn(size_t K, const float* wp, size_t wstride, const size_t* koff, const float* const* px, size_t pixels,       \
          size_t chans, const float* bias, float lo, float hi, float* y, size_t y_plane, size_t y_pixel, float* part, \
          int first, int last);
#define SPARROW_PCONV_WIDE(quad, pair, single, ISA) SPARROW_PCONV_WIDE_DECL(quad) SPARROW_PCONV_WIDE_DECL(pair)
#include "pukernels.inc"
#undef SPARROW_PCONV_UKERNEL
#undef SPARROW_PCONV_WIDE
#undef SPARROW_PCONV_WIDE_DECL

#endif
