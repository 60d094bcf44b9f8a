/* Padded, stride-phase-split input planes (window.h). */
#include <string.h>

#include "window.h"

#include "../dispatch/dispatch.h"

/* Phase p of one padded row at stride 2: dst[j] = padded column 2j + p, i.e. src[2j + p - pad]
 * where that is inside the row, else 0. The inside run is every other float of src. */
static void phase2(float* dst, const float* src, size_t len, size_t w, size_t pad, size_t p, sparrow_even_fn even) {
  /* Inside: pad <= 2j + p < pad + w. */
  size_t lo = pad > p ? (pad - p + 1) / 2 : 0, hi = pad + w > p ? (pad + w - 1 - p) / 2 + 1 : 0;
  if (hi > len) hi = len;
  if (lo > hi) lo = hi;
  memset(dst, 0, lo * sizeof(float));
  const float* s = src + (2 * lo + p - pad);
  const size_t done = even(dst + lo, s, hi - lo);
  for (size_t j = lo + done; j < hi; j++) dst[j] = s[2 * (j - lo)];
  memset(dst + hi, 0, (len - hi) * sizeof(float));
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
  for (size_t r = 0; r < e->rows; r++) {
    float* dst = buf + r * sw * len;
    if (r < s->pad_top || r - s->pad_top >= s->h) {
      memset(dst, 0, sw * len * sizeof(float));
      continue;
    }
    const float* src = x + (r - s->pad_top) * s->w;
    if (sw == 1) {
      const size_t left = s->pad_left < len ? s->pad_left : len;
      const size_t end = s->pad_left + s->w < len ? s->pad_left + s->w : len;
      memset(dst, 0, left * sizeof(float));
      if (end > left) memcpy(dst + left, src, (end - left) * sizeof(float));
      memset(dst + (end > left ? end : left), 0, (len - (end > left ? end : left)) * sizeof(float));
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
