/* Helpers shared by the 1x64 AVX2 microkernels (CSR, N:M): tail masks and the unrolled
 * load / FMA / store macros over up to 8 YMM accumulators named A##0 .. A##7. Included only
 * inside `#if defined(__x86_64__)`. */
#ifndef SPARROW_SPMM_AVX2_1X64_H
#define SPARROW_SPMM_AVX2_1X64_H
#include <immintrin.h>

#include "../common/even.h"
#include "../conv/window.h"

#define SPARROW_AVX2 __attribute__((target("avx2,fma"), always_inline)) static inline

SPARROW_AVX2 __m256i tail_mask(size_t rem) {
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)rem), lanes);
}

#define LD(P, I, NV, MASKED, MASK) \
  ((MASKED) && (I) == (NV) - 1 ? _mm256_maskload_ps((P) + 8 * (I), MASK) : _mm256_loadu_ps((P) + 8 * (I)))
#define FMA1(A, I, V, P, NV) \
  if ((NV) > (I)) A##I = _mm256_fmadd_ps(V, _mm256_load_ps((P) + 8 * (I)), A##I)
#define LOADFMA(A, V, P, NV)                                                                  \
  do {                                                                                        \
    FMA1(A, 0, V, P, NV); FMA1(A, 1, V, P, NV); FMA1(A, 2, V, P, NV); FMA1(A, 3, V, P, NV);   \
    FMA1(A, 4, V, P, NV); FMA1(A, 5, V, P, NV); FMA1(A, 6, V, P, NV); FMA1(A, 7, V, P, NV);   \
  } while (0)
#define ST1(Y, I, A, NV, MASKED, MASK, CLAMP, LO, HI)                                 \
  if ((NV) > (I)) {                                                                   \
    const __m256 c_ = (CLAMP) ? _mm256_min_ps(_mm256_max_ps(A##I, LO), HI) : (A##I); \
    if ((MASKED) && (I) == (NV) - 1) _mm256_maskstore_ps((Y) + 8 * (I), MASK, c_);    \
    else _mm256_storeu_ps((Y) + 8 * (I), c_);                                         \
  }
#define STORE(Y, A, NV, MASKED, MASK, CLAMP, LO, HI)                                      \
  do {                                                                                    \
    ST1(Y, 0, A, NV, MASKED, MASK, CLAMP, LO, HI) ST1(Y, 1, A, NV, MASKED, MASK, CLAMP, LO, HI) \
    ST1(Y, 2, A, NV, MASKED, MASK, CLAMP, LO, HI) ST1(Y, 3, A, NV, MASKED, MASK, CLAMP, LO, HI) \
    ST1(Y, 4, A, NV, MASKED, MASK, CLAMP, LO, HI) ST1(Y, 5, A, NV, MASKED, MASK, CLAMP, LO, HI) \
    ST1(Y, 6, A, NV, MASKED, MASK, CLAMP, LO, HI) ST1(Y, 7, A, NV, MASKED, MASK, CLAMP, LO, HI) \
  } while (0)
#define LDY1(A, I, Y, NV, MASKED, MASK) if ((NV) > (I)) A##I = LD(Y, I, NV, MASKED, MASK)

/* ---- X as a window over one image (sparrow_spmm_call.x_window): im2col panels built on the
 * fly, so the unfolded K x N matrix is never written. A panel's columns [j0, j0 + cols) are
 * runs of consecutive output pixels of one output row each, found once per panel. */
typedef struct {
  size_t oy, ox, len, at; /* output row, first output column, run length, offset in the panel */
} win_run;

/* At most one run per column of a 64-column panel. */
#define WIN_RUNS_MAX 64
#define WIN_SPILL 8

static inline size_t win_runs(const sparrow_dwconv_shape* s, size_t j0, size_t cols, win_run* r) {
  size_t oy = j0 / s->wo, ox = j0 % s->wo, at = 0, n = 0;
  while (at < cols) {
    const size_t len = s->wo - ox < cols - at ? s->wo - ox : cols - at;
    r[n++] = (win_run){oy, ox, len, at};
    at += len, oy++, ox = 0;
  }
  return n;
}

/* Zeroes d[0 .. n) in whole vectors: like win_copy, the store may spill up to 7 floats past
 * d + n (a scalar loop here was 6% of a 3x3 convolution's time in the packed-GEMM kernel). */
SPARROW_AVX2 void win_zero(float* d, size_t n) {
  for (size_t i = 0; i < n; i += 8) _mm256_storeu_ps(d + i, _mm256_setzero_ps());
}

/* Copies src[0 .. n) to d in whole vectors, the last one a masked load (the source is never
 * read past n); the store may spill up to 7 floats past d + n. */
SPARROW_AVX2 void win_copy(float* d, const float* src, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(d + i, _mm256_loadu_ps(src + i));
  if (i < n) _mm256_storeu_ps(d + i, _mm256_maskload_ps(src + i, tail_mask(n - i)));
}

/* One panel row of a shifted window (sparrow_window_is_shifted): one copy of the plane,
 * clamped to the pixels whose input row exists, then the columns whose input column falls in
 * the padding (ox < lo or ox >= hi) are zeroed. */
SPARROW_AVX2 void win_shifted_row(float* d, const sparrow_dwconv_shape* s, const float* plane, const win_run* runs,
                              size_t nruns, size_t cols, size_t ky, long xoff, size_t lo, size_t hi, int nv) {
  const long j0 = (long)(runs[0].oy * s->wo + runs[0].ox);
  long a, b;
  const long shift = sparrow_window_shift_span(s, ky, xoff, j0, j0 + (long)cols, &a, &b);
  if (a >= b) {
    for (int i = 0; i < nv; i++) _mm256_store_ps(d + 8 * i, _mm256_setzero_ps());
    return;
  }
  win_zero(d, (size_t)(a - j0));
  win_copy(d + (a - j0), plane + a + shift, (size_t)(b - a));
  win_zero(d + (b - j0), 8 * (size_t)nv - (size_t)(b - j0));
  if (lo == 0 && hi == s->wo) return;
  for (size_t q = 0; q < nruns; q++) {
    const win_run r = runs[q];
    for (size_t ox = r.ox; ox < lo && ox < r.ox + r.len; ox++) d[r.at + ox - r.ox] = 0.0f;
    for (size_t ox = hi > r.ox ? hi : r.ox; ox < r.ox + r.len; ox++) d[r.at + ox - r.ox] = 0.0f;
  }
}

/* Rows [k0, k1) of the panel (rows (c, ky, kx) of the image's im2col) into buf, rows nv*8
 * floats apart; rows at or past K and masked-out rows are zeros, as are lanes from `cols` on.
 * Runs are copied in whole vectors (the last one a masked load, so the image is never read
 * past a run): the store may spill up to 7 floats past a run, which the next run, the zeros
 * after the last run or the next row overwrite; buf needs WIN_SPILL floats past its last row. */
SPARROW_AVX2 void pack_window(float* buf, const sparrow_dwconv_shape* s, const float* img, const win_run* runs,
                              size_t nruns, size_t cols, size_t k0, size_t k1, size_t K, const uint8_t* km,
                              const int nv) {
  const size_t taps = s->kh * s->kw, sw = s->stride_w;
  const int shifted = sparrow_window_is_shifted(s);
  size_t c = k0 / taps, ky = k0 % taps / s->kw, kx = k0 % s->kw;
  for (size_t k = k0; k < k1; k++, buf += 8 * nv) {
    if (k >= K || (km != NULL && !km[k])) {
      for (int i = 0; i < nv; i++) _mm256_store_ps(buf + 8 * i, _mm256_setzero_ps());
    } else {
      const float* plane = img + c * s->h * s->w;
      const long xoff = (long)(kx * s->dilation_w) - (long)s->pad_left;
      size_t lo, hi;
      sparrow_window_valid_cols(xoff, sw, s->w, s->wo, &lo, &hi);
      if (shifted) {
        win_shifted_row(buf, s, plane, runs, nruns, cols, ky, xoff, lo, hi, nv);
        goto next;
      }
      for (size_t q = 0; q < nruns; q++) {
        const win_run r = runs[q];
        float* d = buf + r.at;
        const long iy = (long)(r.oy * s->stride_h + ky * s->dilation_h) - (long)s->pad_top;
        size_t a = r.ox > lo ? r.ox : lo, b = r.ox + r.len < hi ? r.ox + r.len : hi;
        if (iy < 0 || iy >= (long)s->h || a >= b) {
          win_zero(d, r.len);
          continue;
        }
        win_zero(d, a - r.ox);
        const float* src = plane + (size_t)iy * s->w + (long)(a * sw) + xoff;
        float* out = d + (a - r.ox);
        const size_t n = b - a;
        if (sw == 1) {
          win_copy(out, src, n);
        } else {
          for (size_t i = sw == 2 ? sparrow_even_avx2(out, src, n) : 0; i < n; i++) out[i] = src[i * sw];
        }
        win_zero(out + n, r.ox + r.len - b);
      }
      win_zero(buf + cols, 8 * (size_t)nv - cols);
    }
  next:
    if (++kx == s->kw) {
      kx = 0;
      if (++ky == s->kh) ky = 0, c++;
    }
  }
}

#endif
