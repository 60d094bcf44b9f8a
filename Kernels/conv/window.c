/* Padded, stride-phase-split input planes (window.h). */
#include <string.h>

#include "window.h"

#include "../dispatch/dispatch.h"

/* Phase p of one padded row at stride 2, inside part only (the plane was zeroed first):
 * dst[j] = padded column 2j + p, i.e. src[2j + p - pad], where that is inside the row. The
 * inside run is every other float of src. */
static void phase2(float* dst, const float* src, size_t len, size_t w, size_t pad, size_t p, sparrow_even_fn even) {
  /* Inside: pad <= 2j + p < pad + w. */
  size_t lo = pad > p ? (pad - p + 1) / 2 : 0, hi = pad + w > p ? (pad + w - 1 - p) / 2 + 1 : 0;
  if (hi > len) hi = len;
  if (lo > hi) lo = hi;
  const float* s = src + (2 * lo + p - pad);
  const size_t done = even(dst + lo, s, hi - lo);
  for (size_t j = lo + done; j < hi; j++) dst[j] = s[2 * (j - lo)];
}

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

/* Copies input plane `x` into rows of stride_w phases: phase p of padded row r holds the
 * padded columns p, p + stride_w, ...; out-of-plane positions are 0. */
void sparrow_window_pad_plane(const sparrow_dwconv_shape* s, const extents* e, const float* x, float* buf) {
  const size_t sw = s->stride_w, len = e->phase_len;
  const sparrow_even_fn even = sparrow_dispatch_even();
  /* One memset for the whole plane, then only the inside of each row: the per-row zeroing
   * calls cost more than the copies on narrow maps (a quarter of MobileNetV2's time went to
   * padding depthwise planes). */
  if (sw <= 2) memset(buf, 0, e->rows * sw * len * sizeof(float));
  for (size_t r = 0; r < e->rows; r++) {
    float* dst = buf + r * sw * len;
    if (r < s->pad_top || r - s->pad_top >= s->h) {
      if (sw > 2) memset(dst, 0, sw * len * sizeof(float));
      continue;
    }
    const float* src = x + (r - s->pad_top) * s->w;
    if (sw == 1) {
      const size_t left = s->pad_left < len ? s->pad_left : len;
      const size_t end = s->pad_left + s->w < len ? s->pad_left + s->w : len;
      if (end > left) memcpy(dst + left, src, (end - left) * sizeof(float));
      continue;
    }
    if (sw == 2) {
      for (size_t p = 0; p < 2; p++) phase2(dst + p * len, src, len, s->w, s->pad_left, p, even);
      continue;
    }
    for (size_t p = 0; p < sw; p++)
      for (size_t j = 0; j < len; j++) {
        const size_t col = j * sw + p;
        dst[p * len + j] = col >= s->pad_left && col - s->pad_left < s->w ? src[col - s->pad_left] : 0.0f;
      }
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
