/* Window geometry shared by the depthwise and direct sparse convolutions: the padded reach of
 * a convolution window, and the padded, stride-phase-split copy of an input plane in which
 * every tap (ky, kx) of an output row is a contiguous run (see dwconv/dwconv.h). */
#ifndef SPARROW_WINDOW_H
#define SPARROW_WINDOW_H
#include <stddef.h>

#include "sparrow_kernels.h"

typedef struct {
  size_t rows, cols, phase_len, taps;  /* padded rows, padded columns, columns per phase, kh*kw */
} extents;

int sparrow_mul_ok(size_t a, size_t b, size_t* out);
/* 0 when the reach overflows. */
int sparrow_window_extents(const sparrow_dwconv_shape* s, extents* e);
/* Floats in one padded plane: rows * stride_w * phase_len. */
size_t sparrow_window_plane_floats(const sparrow_dwconv_shape* s, const extents* e);
void sparrow_window_pad_plane(const sparrow_dwconv_shape* s, const extents* e, const float* x, float* buf);
/* Offset (in floats, inside a padded plane) of tap (ky, kx) for output row 0. */
static inline size_t sparrow_window_tap_offset(const sparrow_dwconv_shape* s, const extents* e, size_t ky, size_t kx) {
  const size_t col = kx * s->dilation_w;
  return (ky * s->dilation_h * s->stride_w + col % s->stride_w) * e->phase_len + col / s->stride_w;
}
#endif
