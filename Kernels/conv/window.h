/* Window geometry, the one place for it: the padded reach of a convolution window and the
 * padded, stride-phase-split copy of an input plane in which every tap (ky, kx) of an output
 * row is a contiguous run (the depthwise and direct sparse convolutions, see dwconv/dwconv.h),
 * and the valid columns and shifted rows of an im2col row (conv/im2col.c and the AVX2 kernels
 * that build im2col panels from the image, spmm/avx2-1x64.h). */
#ifndef SPARROW_WINDOW_H
#define SPARROW_WINDOW_H
#include <stddef.h>

#include "sparrow_kernels.h"
#include "../common/common.h"

typedef struct {
  size_t rows, cols, phase_len, taps; /* padded rows, padded columns, columns per phase, kh*kw */
} extents;

/* 0 when the reach overflows. */
int sparrow_window_extents(const sparrow_dwconv_shape* s, extents* e);
/* Floats in one padded plane: rows * stride_w * phase_len. */
size_t sparrow_window_plane_floats(const sparrow_dwconv_shape* s, const extents* e);
void sparrow_window_pad_plane(const sparrow_dwconv_shape* s, const extents* e, const float* x, float* buf);
/* Padded rows [r0, r1) of the same copy into buf (buf's row 0 is padded row r0; rows
 * stride_w * phase_len floats apart). */
void sparrow_window_pad_rows(const sparrow_dwconv_shape* s, const extents* e, const float* x, size_t r0, size_t r1,
                             float* buf);
/* Offset (in floats, inside a padded plane) of tap (ky, kx) for output row 0. */
static inline size_t sparrow_window_tap_offset(const sparrow_dwconv_shape* s, const extents* e, size_t ky, size_t kx) {
  const size_t col = kx * s->dilation_w;
  return (ky * s->dilation_h * s->stride_w + col % s->stride_w) * e->phase_len + col / s->stride_w;
}

/* Rows [k0, k1) (rows (c, ky, kx)) x columns [j0, j0 + cols) (output pixels oy * wo + ox) of
 * the im2col of one NCHW image `img` under window s, written to buf with rows ld >= cols floats
 * apart; lanes [cols, ld) and rows whose mask byte is 0 (mask indexed by k, NULL: all active)
 * are zeros, as is every tap that falls in the padding. Plain C (memcpy runs), for every ISA:
 * the packed-GEMM kernels build their K-slice x NR panels with it instead of reading an
 * unfolded matrix (Kernels/dense/gemm/window.c). Reads the image only inside its planes. */
void sparrow_window_panel(const sparrow_dwconv_shape* s, const float* img, size_t j0, size_t cols, size_t k0, size_t k1,
                          const uint8_t* mask, float* buf, size_t ld);

/* Output columns [lo, hi) whose input column ox * sw + off lies inside 0..<w (lo = hi: none). */
static inline void sparrow_window_valid_cols(long off, size_t sw, size_t w, size_t wo, size_t* lo, size_t* hi) {
  if (sw == 1) { /* no divisions: this runs once per panel row */
    const size_t a = off < 0 ? (size_t)(-off) : 0;
    size_t b = off < (long)w ? (size_t)((long)w - off) : 0;
    if (b > wo) b = wo;
    *lo = a < b ? a : b;
    *hi = b;
    return;
  }
  const size_t a = off < 0 ? ((size_t)(-off) + sw - 1) / sw : 0;
  size_t b = off < (long)w ? ((size_t)((long)w - 1 - off)) / sw + 1 : 0;
  if (b > wo) b = wo;
  *lo = a < b ? a : b;
  *hi = b;
}

/* Both strides 1 and the output as wide as the input (the usual "same" k x k convolution):
 * output pixel j of tap (ky, kx) reads plane[j + shift] for one constant shift, so an im2col
 * row is one copy of the plane. */
static inline int sparrow_window_is_shifted(const sparrow_dwconv_shape* s) {
  return s->stride_h == 1 && s->stride_w == 1 && s->wo == s->w;
}

/* For such a window: returns the shift of tap row ky with column offset xoff, and the part
 * [*a, *b) of output pixels [j0, j1) whose input row exists and whose source index lies inside
 * the plane (empty when *a >= *b). Pixels there whose input column falls in the padding (ox
 * outside sparrow_window_valid_cols) still read a neighbouring row's value: callers zero them. */
static inline long sparrow_window_shift_span(const sparrow_dwconv_shape* s, size_t ky, long xoff, long j0, long j1,
                                             long* a, long* b) {
  const long dy = (long)(ky * s->dilation_h) - (long)s->pad_top;
  const long shift = dy * (long)s->w + xoff, hw = (long)(s->h * s->w);
  long lo = dy < 0 ? -dy * (long)s->wo : 0, hi = ((long)s->h - dy) * (long)s->wo;
  if (lo < -shift) lo = -shift;
  if (hi > hw - shift) hi = hw - shift;
  if (lo < j0) lo = j0;
  if (hi > j1) hi = j1;
  *a = lo;
  *b = hi;
  return shift;
}
#endif
