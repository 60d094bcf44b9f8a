/* im2col for k x k convolutions: unfolds channels of one NCHW image into the K x N matrix the
 * SpMM kernels read (rows (c, ky, kx), columns (oy, ox)). Per tap, the output columns that
 * fall inside the input are found once; rows then copy that run (memcpy at stride 1) and
 * zero the padding around it. */
#include <string.h>

#include "../dispatch/dispatch.h"
#include "window.h"

/* A row of a shifted window (sparrow_window_is_shifted), output rows [oy0, oy1): one copy of
 * the plane, clamped to the pixels whose input row exists, then the columns whose input column
 * falls in the padding (ox < lo or ox >= hi) are zeroed. */
static void shifted_row(const sparrow_dwconv_shape* s, const float* plane, size_t ky, long xoff, size_t lo, size_t hi,
                        size_t oy0, size_t oy1, float* out) {
  /* Columns [j0, j1) of the full row, written from out[0]. */
  const long j0 = (long)(oy0 * s->wo), j1 = (long)(oy1 * s->wo);
  long a, b;
  const long shift = sparrow_window_shift_span(s, ky, xoff, j0, j1, &a, &b);
  if (a >= b) {
    memset(out, 0, (size_t)(j1 - j0) * sizeof(float));
    return;
  }
  memset(out, 0, (size_t)(a - j0) * sizeof(float));
  memcpy(out + (a - j0), plane + a + shift, (size_t)(b - a) * sizeof(float));
  memset(out + (b - j0), 0, (size_t)(j1 - b) * sizeof(float));
  if (lo == 0 && hi == s->wo) return;
  for (size_t oy = (size_t)a / s->wo; oy * s->wo < (size_t)b; oy++) {
    float* r = out + (oy - oy0) * s->wo;
    for (size_t ox = 0; ox < lo; ox++) r[ox] = 0.0f;
    for (size_t ox = hi; ox < s->wo; ox++) r[ox] = 0.0f;
  }
}

void sparrow_im2col(const sparrow_dwconv_shape* s, const float* x, size_t c0, size_t channels, float* col) {
  sparrow_im2col_rows(s, x, c0, channels, 0, s->ho, col);
}

void sparrow_im2col_rows(const sparrow_dwconv_shape* s, const float* x, size_t c0, size_t channels, size_t oy0,
                         size_t oy1, float* col) {
  sparrow_im2col_rows_ld(s, x, c0, channels, oy0, oy1, col, (oy1 - oy0) * s->wo);
}

void sparrow_im2col_rows_ld(const sparrow_dwconv_shape* s, const float* x, size_t c0, size_t channels, size_t oy0,
                            size_t oy1, float* col, size_t ld) {
  const int shifted = sparrow_window_is_shifted(s);
  const sparrow_even_fn even = sparrow_dispatch_even();
  float* row = col;
  for (size_t c = c0; c < c0 + channels; c++) {
    const float* plane = x + c * s->h * s->w;
    for (size_t ky = 0; ky < s->kh; ky++)
      for (size_t kx = 0; kx < s->kw; kx++, row += ld) {
        const long xoff = (long)(kx * s->dilation_w) - (long)s->pad_left;
        size_t lo, hi;
        sparrow_window_valid_cols(xoff, s->stride_w, s->w, s->wo, &lo, &hi);
        if (shifted) {
          shifted_row(s, plane, ky, xoff, lo, hi, oy0, oy1, row);
          continue;
        }
        for (size_t oy = oy0; oy < oy1; oy++) {
          float* out = row + (oy - oy0) * s->wo;
          const long iy = (long)(oy * s->stride_h + ky * s->dilation_h) - (long)s->pad_top;
          if (iy < 0 || iy >= (long)s->h || lo == hi) {
            memset(out, 0, s->wo * sizeof(float));
            continue;
          }
          const float* src = plane + (size_t)iy * s->w;
          memset(out, 0, lo * sizeof(float));
          if (s->stride_w == 1) {
            memcpy(out + lo, src + (long)lo + xoff, (hi - lo) * sizeof(float));
          } else {
            const float* p = src + (long)(lo * s->stride_w) + xoff;
            const size_t done = s->stride_w == 2 ? even(out + lo, p, hi - lo) : 0;
            for (size_t ox = lo + done; ox < hi; ox++) out[ox] = p[(ox - lo) * s->stride_w];
          }
          memset(out + hi, 0, (s->wo - hi) * sizeof(float));
        }
      }
  }
}
