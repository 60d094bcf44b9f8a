/* Padded, stride-phase-split input planes (window.h). */
#include <string.h>

#include "window.h"

int sparrow_mul_ok(size_t a, size_t b, size_t* out) { return !__builtin_mul_overflow(a, b, out); }


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
    for (size_t p = 0; p < sw; p++)
      for (size_t j = 0; j < len; j++) {
        const size_t col = j * sw + p;
        dst[p * len + j] = col >= s->pad_left && col - s->pad_left < s->w ? src[col - s->pad_left] : 0.0f;
      }
  }
}

