/* Padded, stride-phase-split input planes (window.h). */
#include <string.h>

#include "window.h"

#include "../dispatch/dispatch.h"

int sparrow_window_extents(const sparrow_dwconv_shape* s, extents* e) {
  size_t a, b;
  if (!sparrow_mul_ok(s->ho - 1, s->stride_h, &a) || !sparrow_mul_ok(s->kh - 1, s->dilation_h, &b)) return 0;
  e->rows = a + b + 1;
  if (!sparrow_mul_ok(s->wo - 1, s->stride_w, &a) || !sparrow_mul_ok(s->kw - 1, s->dilation_w, &b)) return 0;
  e->cols = a + b + 1;
  e->phase_len = (e->cols + s->stride_w - 1) / s->stride_w;
  e->taps = s->kh * s->kw;
  return 1;
}

size_t sparrow_window_plane_floats(const sparrow_dwconv_shape* s, const extents* e) {
  return e->rows * s->stride_w * e->phase_len;
}

void sparrow_window_pad_plane(const sparrow_dwconv_shape* s, const extents* e, const float* x, float* buf) {
  sparrow_window_pad_rows(s, e, x, 0, e->rows, buf);
}

/* Phase p of padded row r holds the padded columns p, p + stride_w, ...; out-of-plane positions
 * are 0. One memset for all the rows, then only each row's inside (bounds worked out once per
 * call: per-row zeroing loops, divisions and memset calls cost more than the copies on narrow
 * maps, a quarter of MobileNetV2's time once). A stride-2 row is split into both phases in one
 * pass (sparrow_split2). */
void sparrow_window_pad_rows(const sparrow_dwconv_shape* s, const extents* e, const float* x, size_t r0, size_t r1,
                             float* buf) {
  const size_t sw = s->stride_w, len = e->phase_len, pl = s->pad_left, w = s->w;
  if (sw > 2) {
    for (size_t r = r0; r < r1; r++) {
      float* dst = buf + (r - r0) * sw * len;
      const int inside = r >= s->pad_top && r - s->pad_top < s->h;
      const float* src = x + (inside ? r - s->pad_top : 0) * w;
      for (size_t p = 0; p < sw; p++)
        for (size_t j = 0; j < len; j++) {
          const size_t col = j * sw + p;
          dst[p * len + j] = inside && col >= pl && col - pl < w ? src[col - pl] : 0.0f;
        }
    }
    return;
  }
  memset(buf, 0, (r1 - r0) * sw * len * sizeof(float));
  /* Rows of the plane among [r0, r1). */
  const size_t top = s->pad_top, lo = r0 > top ? r0 : top, hi = r1 < top + s->h ? r1 : top + s->h;
  if (sw == 1) {
    const size_t a = pl < len ? pl : len, b = pl + w < len ? pl + w : len;
    if (b > a)
      for (size_t r = lo; r < hi; r++) memcpy(buf + (r - r0) * len + a, x + (r - top) * w, (b - a) * sizeof(float));
    return;
  }
  /* Source floats 2m (m < ne) go to phase pe from index be, 2m + 1 (m < no) to the other phase
   * from bo. */
  const size_t pe = pl & 1, be = pl >> 1, bo = (pl + 1) >> 1;
  const size_t ne = be < len ? ((w + 1) / 2 < len - be ? (w + 1) / 2 : len - be) : 0;
  const size_t no = bo < len ? (w / 2 < len - bo ? w / 2 : len - bo) : 0;
  const size_t pairs = ne < no ? ne : no;
  const sparrow_split2_fn split = sparrow_dispatch_split2();
  for (size_t r = lo; r < hi; r++) {
    float* de = buf + (r - r0) * 2 * len + pe * len + be;
    float* dO = buf + (r - r0) * 2 * len + (1 - pe) * len + bo;
    const float* src = x + (r - top) * w;
    const size_t done = split(de, dO, src, pairs);
    for (size_t m = done; m < ne; m++) de[m] = src[2 * m];
    for (size_t m = done; m < no; m++) dO[m] = src[2 * m + 1];
  }
}

/* Columns with ox < lo or ox >= hi of the panel row d (columns [j0, j0 + cols)) to zero. */
static void zero_outside(float* d, size_t wo, size_t ox, size_t cols, size_t lo, size_t hi) {
  for (size_t j = 0; j < cols;) {
    const size_t len = wo - ox < cols - j ? wo - ox : cols - j;
    for (size_t q = ox; q < lo && q < ox + len; q++) d[j + q - ox] = 0.0f;
    for (size_t q = hi > ox ? hi : ox; q < ox + len; q++) d[j + q - ox] = 0.0f;
    j += len, ox = 0;
  }
}

void sparrow_window_panel(const sparrow_dwconv_shape* s, const float* img, size_t j0, size_t cols, size_t k0, size_t k1,
                          const uint8_t* mask, float* buf, size_t ld) {
  const size_t taps = s->kh * s->kw, sw = s->stride_w, hw = s->h * s->w;
  const int shifted = sparrow_window_is_shifted(s);
  const sparrow_even_fn even = sparrow_dispatch_even();
  const size_t oy0 = j0 / s->wo, ox0 = j0 % s->wo;
  size_t c = k0 / taps, ky = k0 % taps / s->kw, kx = k0 % s->kw;
  for (size_t k = k0; k < k1; k++, buf += ld) {
    const float* plane = img + c * hw;
    const long xoff = (long)(kx * s->dilation_w) - (long)s->pad_left;
    size_t lo, hi;
    sparrow_window_valid_cols(xoff, sw, s->w, s->wo, &lo, &hi);
    if (mask != NULL && !mask[k]) {
      memset(buf, 0, ld * sizeof(float));
    } else if (shifted) {
      /* One copy of the plane, clamped to the pixels whose input row exists. */
      long a, b;
      const long shift = sparrow_window_shift_span(s, ky, xoff, (long)j0, (long)(j0 + cols), &a, &b);
      if (a >= b) {
        memset(buf, 0, ld * sizeof(float));
      } else {
        const size_t ua = (size_t)a - j0, ub = (size_t)b - j0;
        memset(buf, 0, ua * sizeof(float));
        memcpy(buf + ua, plane + a + shift, (ub - ua) * sizeof(float));
        memset(buf + ub, 0, (ld - ub) * sizeof(float));
        if (lo != 0 || hi != s->wo) zero_outside(buf, s->wo, ox0, cols, lo, hi);
      }
    } else {
      size_t oy = oy0, ox = ox0;
      for (size_t j = 0; j < cols; oy++, ox = 0) {
        const size_t len = s->wo - ox < cols - j ? s->wo - ox : cols - j;
        float* d = buf + j;
        j += len;
        const long iy = (long)(oy * s->stride_h + ky * s->dilation_h) - (long)s->pad_top;
        const size_t a = ox > lo ? ox : lo, b = ox + len < hi ? ox + len : hi;
        if (iy < 0 || iy >= (long)s->h || a >= b) {
          memset(d, 0, len * sizeof(float));
          continue;
        }
        memset(d, 0, (a - ox) * sizeof(float));
        const float* src = plane + (size_t)iy * s->w + (size_t)((long)(a * sw) + xoff);
        float* out = d + (a - ox);
        const size_t nn = b - a;
        if (sw == 1) {
          memcpy(out, src, nn * sizeof(float));
        } else {
          for (size_t i = sw == 2 ? even(out, src, nn) : 0; i < nn; i++) out[i] = src[i * sw];
        }
        memset(out + nn, 0, (ox + len - b) * sizeof(float));
      }
      memset(buf + cols, 0, (ld - cols) * sizeof(float));
    }
    if (++kx == s->kw) {
      kx = 0;
      if (++ky == s->kh) ky = 0, c++;
    }
  }
}
