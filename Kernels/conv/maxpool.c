/* Max pooling of float32 NCHW planes (sparrow_maxpool_f32, sparrow_kernels.h). Plain C that
 * the compiler vectorises on every ISA (SSE2, NEON): per output row, the max over the window's
 * in-input rows into one row (a single pass for up to three rows), then over its columns, all
 * taps of an output in one pass where every tap is inside the input (the edges tap by tap).
 * The same folds in the same order as Sparrow's former Swift loops (`v > m ? v : m`, the
 * window's first in-input row first), so the results are theirs bit for bit; ResNet-18's
 * 64x112x112 pool: 0.33 -> see Bench/results. */
#include <float.h>
#include <string.h>

#include "../dispatch/dispatch.h"
#include "sparrow_kernels.h"

#define MAXF(m, v) ((v) > (m) ? (v) : (m))

/* o[i] (i in [i0, i1)) = the fold of row[i * SW + kx * DW - pl] over kx < KW, from -FLT_MAX. */
static inline __attribute__((always_inline)) void cols_all(float* restrict o, const float* restrict row, size_t i0,
                                                           size_t i1, size_t pl, size_t KW, size_t SW, size_t DW) {
  for (size_t i = i0; i < i1; i++) {
    const float* s = row + i * SW - pl;
    float m = -FLT_MAX;
    for (size_t kx = 0; kx < KW; kx++) m = MAXF(m, s[kx * DW]);
    o[i] = m;
  }
}

typedef float v4f __attribute__((vector_size(16)));
typedef int v4i __attribute__((vector_size(16)));

static inline v4f load4(const float* p) {
  v4f v;
  memcpy(&v, p, sizeof v);
  return v;
}
/* Lanewise MAXF(m, v): v where v > m, else m (a NaN in v loses; in m it stays). */
static inline v4f max4(v4f m, v4f v) {
  const v4i take = v > m;
  return (v4f)(((v4i)v & take) | ((v4i)m & ~take));
}

/* cols_all for 2- and 3-wide stride-2 windows (ResNet's and the digits model's pools), four
 * outputs at a time: the taps' even and odd lanes split with shuffles (the compiler's cost model
 * leaves the strided loop scalar on SSE2). Reads row[2 * i1 - pl + 1] at most: the caller's row
 * has the slack. */
static void cols_s2(float* restrict o, const float* restrict row, size_t i0, size_t i1, size_t pl, size_t kw) {
  size_t i = i0;
  for (; i + 4 <= i1; i += 4) {
    const float* s = row + 2 * i - pl;
    const v4f a = load4(s), b = load4(s + 4);
    v4f m = {-FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX};
    m = max4(max4(m, __builtin_shufflevector(a, b, 0, 2, 4, 6)), __builtin_shufflevector(a, b, 1, 3, 5, 7));
    if (kw == 3) {
      const v4f c = load4(s + 2), d = load4(s + 6);
      m = max4(m, __builtin_shufflevector(c, d, 0, 2, 4, 6));
    }
    memcpy(o + i, &m, sizeof m);
  }
  if (kw == 3)
    cols_all(o, row, i, i1, pl, 3, 2, 1);
  else
    cols_all(o, row, i, i1, pl, 2, 2, 1);
}

/* Output columns whose every tap is inside the input, [in0, in1): the intersection of the taps'
 * ranges; whether there are any. */
static int interior_columns(const sparrow_maxpool_shape* g, size_t* in0, size_t* in1) {
  *in0 = 0, *in1 = g->wo;
  for (size_t kx = 0; kx < g->kw; kx++) {
    if ((size_t)g->col_lo[kx] > *in0) *in0 = (size_t)g->col_lo[kx];
    if ((size_t)g->col_hi[kx] < *in1) *in1 = (size_t)g->col_hi[kx];
  }
  return *in1 > *in0;
}

void sparrow_maxpool_f32(const sparrow_maxpool_shape* g, const float* x, float* y, size_t planes, float* row) {
  const size_t w = g->w, wo = g->wo, kw = g->kw, sw = g->stride_w, dw = g->dilation_w, pl = g->pad_left;
  size_t in0, in1;
  const int interior = interior_columns(g, &in0, &in1);
  /* 2x2 stride-2 windows with every column inside (the digits model's pool: 0.017 -> see
   * Bench/results): rows and columns in one vector pass where the ISA has one. */
  const sparrow_pool2_fn pool2 =
      kw == 2 && sw == 2 && dw == 1 && pl == 0 && in0 == 0 && in1 == wo ? sparrow_dispatch_pool2() : NULL;
  for (size_t p = 0; p < planes; p++) {
    const float* plane = x + p * g->h * w;
    float* out = y + p * g->ho * wo;
    for (size_t oy = 0; oy < g->ho; oy++) {
      float* restrict o = out + oy * wo;
      const ptrdiff_t lo = g->row_lo[oy], hi = g->row_hi[oy];
      if (lo >= hi) {
        for (size_t i = 0; i < wo; i++) o[i] = -FLT_MAX;
        continue;
      }
      /* Rows lo, lo + 1, ... of the window (input rows start + ky * dh). */
      const float* r0 = plane + (size_t)(g->row_start[oy] + lo * (ptrdiff_t)g->dilation_h) * w;
      const size_t step = g->dilation_h * w, n = (size_t)(hi - lo);
      if (pool2 != NULL && n == 2) {
        const float *a = r0, *b = r0 + step;
        for (size_t i = pool2(o, a, b, wo); i < wo; i++) {
          const float e = MAXF(a[2 * i], b[2 * i]), d = MAXF(a[2 * i + 1], b[2 * i + 1]);
          const float v = MAXF(-FLT_MAX, e);
          o[i] = MAXF(v, d);
        }
        continue;
      }
      float* restrict m = row;
      if (n == 1) {
        memcpy(m, r0, w * sizeof(float));
      } else if (n == 2) {
        const float *a = r0, *b = r0 + step;
        for (size_t i = 0; i < w; i++) m[i] = MAXF(a[i], b[i]);
      } else {
        const float *a = r0, *b = r0 + step, *c = r0 + 2 * step;
        for (size_t i = 0; i < w; i++) {
          const float v = MAXF(a[i], b[i]);
          m[i] = MAXF(v, c[i]);
        }
        for (size_t ky = 3; ky < n; ky++) {
          const float* r = r0 + ky * step;
          for (size_t i = 0; i < w; i++) m[i] = MAXF(m[i], r[i]);
        }
      }
      /* The edges tap by tap (every column when no output has all its taps inside), in kx
       * order as the interior's fold. */
      const size_t e0 = interior ? in0 : wo, e1 = interior ? in1 : wo;
      for (size_t i = 0; i < wo; i++) {
        if (i == e0) i = e1;
        if (i >= wo) break;
        float v = -FLT_MAX;
        for (size_t kx = 0; kx < kw; kx++)
          if ((ptrdiff_t)i >= g->col_lo[kx] && (ptrdiff_t)i < g->col_hi[kx]) v = MAXF(v, m[i * sw + kx * dw - pl]);
        o[i] = v;
      }
      if (!interior) continue;
      /* The interior, specialised for the common windows so the loop vectorises. */
      if ((kw == 3 || kw == 2) && sw == 2 && dw == 1)
        cols_s2(o, m, in0, in1, pl, kw);
      else if (kw == 3 && sw == 1 && dw == 1)
        cols_all(o, m, in0, in1, pl, 3, 1, 1);
      else
        cols_all(o, m, in0, in1, pl, kw, sw, dw);
    }
  }
}

/* ---- bytes (sparrow_maxpool_u8) ----------------------------------------------------------------- */

/* The byte form of the passes above, on values x ^ flip (flip 0x80: int8 data compared as uint8).
 * Byte max has no NaN, so the fold order does not matter; the interior's common windows run as
 * 16-byte vectors (pmaxub / umax, the stride-2 taps split with shuffles), replacing a Swift loop
 * that called a C byte-max per row and per tap (ResNet-18's 64 x 112 x 112 pool: 0.23 ms). */
typedef uint8_t v16b __attribute__((vector_size(16)));

static inline v16b load16b(const uint8_t* p) {
  v16b v;
  memcpy(&v, p, sizeof v);
  return v;
}
static inline v16b max16b(v16b a, v16b b) {
  const v16b take = (v16b)(a > b);
  return (a & take) | (b & ~take);
}
#define MAXB(a, b) ((a) > (b) ? (a) : (b))

void sparrow_maxpool_u8(const sparrow_maxpool_shape* g, const uint8_t* x, uint8_t* y, size_t planes, uint8_t* row,
                        uint8_t flip) {
  const size_t w = g->w, wo = g->wo, kw = g->kw, sw = g->stride_w, dw = g->dilation_w, pl = g->pad_left;
  size_t in0, in1;
  const int interior = interior_columns(g, &in0, &in1);
  const v16b fv = (v16b){0} + flip;
  for (size_t p = 0; p < planes; p++) {
    const uint8_t* plane = x + p * g->h * w;
    uint8_t* out = y + p * g->ho * wo;
    for (size_t oy = 0; oy < g->ho; oy++) {
      uint8_t* restrict o = out + oy * wo;
      const ptrdiff_t lo = g->row_lo[oy], hi = g->row_hi[oy];
      if (lo >= hi) {
        memset(o, flip, wo);
        continue;
      }
      /* The window's in-input rows folded into m (flipped domain). */
      const uint8_t* r0 = plane + (size_t)(g->row_start[oy] + lo * (ptrdiff_t)g->dilation_h) * w;
      const size_t step = g->dilation_h * w, n = (size_t)(hi - lo);
      uint8_t* restrict m = row;
      size_t i = 0;
      for (; i < w && w >= 16; i += 16) {
        if (i + 16 > w) i = w - 16; /* the last 16 again, overlapping */
        v16b v = load16b(r0 + i) ^ fv;
        for (size_t ky = 1; ky < n; ky++) v = max16b(v, load16b(r0 + ky * step + i) ^ fv);
        memcpy(m + i, &v, 16);
      }
      for (; i < w; i++) {
        uint8_t v = r0[i] ^ flip;
        for (size_t ky = 1; ky < n; ky++) v = MAXB(v, (uint8_t)(r0[ky * step + i] ^ flip));
        m[i] = v;
      }
      /* Edges tap by tap; a column with no tap gives 0 (the minimum, flipped back below). */
      const size_t e0 = interior ? in0 : wo, e1 = interior ? in1 : wo;
      for (size_t c = 0; c < wo; c++) {
        if (c == e0) c = e1;
        if (c >= wo) break;
        uint8_t v = 0;
        for (size_t kx = 0; kx < kw; kx++)
          if ((ptrdiff_t)c >= g->col_lo[kx] && (ptrdiff_t)c < g->col_hi[kx]) v = MAXB(v, m[c * sw + kx * dw - pl]);
        o[c] = v ^ flip;
      }
      if (!interior) continue;
      size_t c = in0;
      if ((kw == 3 || kw == 2) && sw == 2 && dw == 1) {
        /* Reads m[2 * c - pl + 33] at most: the row's slack. */
        for (; c < in1 && in1 - in0 >= 16; c += 16) {
          if (c + 16 > in1) c = in1 - 16; /* the last 16 again, overlapping: no scalar tail */
          const uint8_t* s = m + 2 * c - pl;
          const v16b a = load16b(s), b = load16b(s + 16);
          v16b v = max16b(__builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30),
                          __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31));
          if (kw == 3) {
            const v16b c2 = load16b(s + 2), d2 = load16b(s + 18);
            v = max16b(v, __builtin_shufflevector(c2, d2, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30));
          }
          v ^= fv;
          memcpy(o + c, &v, 16);
        }
      } else if (sw == 1 && dw == 1) {
        for (; c < in1 && in1 - in0 >= 16; c += 16) {
          if (c + 16 > in1) c = in1 - 16;
          const uint8_t* s = m + c - pl;
          v16b v = load16b(s);
          for (size_t kx = 1; kx < kw; kx++) v = max16b(v, load16b(s + kx));
          v ^= fv;
          memcpy(o + c, &v, 16);
        }
      }
      for (; c < in1; c++) {
        const uint8_t* s = m + c * sw - pl;
        uint8_t v = s[0];
        for (size_t kx = 1; kx < kw; kx++) v = MAXB(v, s[kx * dw]);
        o[c] = v ^ flip;
      }
    }
  }
}
