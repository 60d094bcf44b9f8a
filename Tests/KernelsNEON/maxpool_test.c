/* Max pooling (Kernels/conv/maxpool.c) against a plain window loop: random kernels 1-4 x 1-5,
 * strides 1-3, dilations 1-2, pads up to kernel - 1 on each side (the last output may be all
 * padding in ceil-like geometries: -FLT_MAX), maps 1-40 wide, several planes; the tap tables
 * built here as the Swift step builds them. Values distinct (no NaN, no -0), so any fold order
 * gives the same maximum: exact equality. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "neon_test.h"
#include "sparrow_kernels.h"

static uint64_t mp_state;
static size_t mp_rnd(size_t lo, size_t hi) {
  mp_state = mp_state * 6364136223846793005ull + 1442695040888963407ull;
  return lo + (size_t)((mp_state >> 33) % (hi - lo + 1));
}

/* Output o's window on one axis: tap 0 at o * stride - pad; taps [lo, hi) inside [0, size). */
static void axis(size_t outs, size_t size, size_t k, size_t stride, size_t dil, size_t pad, ptrdiff_t* start,
                 ptrdiff_t* lo, ptrdiff_t* hi) {
  for (size_t o = 0; o < outs; o++) {
    const ptrdiff_t s = (ptrdiff_t)(o * stride) - (ptrdiff_t)pad;
    ptrdiff_t l = (ptrdiff_t)k, h = 0;
    for (size_t t = 0; t < k; t++) {
      const ptrdiff_t i = s + (ptrdiff_t)(t * dil);
      if (i >= 0 && i < (ptrdiff_t)size) {
        if ((ptrdiff_t)t < l) l = (ptrdiff_t)t;
        h = (ptrdiff_t)t + 1;
      }
    }
    start[o] = s, lo[o] = l < h ? l : 0, hi[o] = l < h ? h : 0;
  }
}

/* Per kernel column kx: the outputs whose tap kx is inside [0, w) (as PoolWindow.tapColumns). */
static void tap_columns(size_t wo, size_t w, size_t kw, size_t dw, const ptrdiff_t* cs, ptrdiff_t* col_lo,
                        ptrdiff_t* col_hi) {
  for (size_t kx = 0; kx < kw; kx++) {
    ptrdiff_t a = (ptrdiff_t)wo, b = 0;
    for (size_t o = 0; o < wo; o++) {
      const ptrdiff_t c = cs[o] + (ptrdiff_t)(kx * dw);
      if (c >= 0 && c < (ptrdiff_t)w) {
        if ((ptrdiff_t)o < a) a = (ptrdiff_t)o;
        b = (ptrdiff_t)o + 1;
      }
    }
    col_lo[kx] = a < b ? a : 0, col_hi[kx] = a < b ? b : 0;
  }
}

void test_maxpool_2x2(uint64_t seed);
void test_maxpool_u8(uint64_t seed, long cases);

void test_maxpool(uint64_t seed, long cases) {
  mp_state = seed ^ 0x3A9F001ull;
  const size_t passed_before = g_passed;
  for (long i = 0; i < cases; i++) {
    const size_t kh = mp_rnd(1, 4), kw = mp_rnd(1, 5), sh = mp_rnd(1, 3), sw = mp_rnd(1, 3);
    const size_t dh = mp_rnd(1, 2), dw = mp_rnd(1, 2), pt = mp_rnd(0, kh - 1), pl = mp_rnd(0, kw - 1);
    const size_t h = mp_rnd(1, 20), w = mp_rnd(1, 40), planes = mp_rnd(1, 3);
    const size_t reach_h = (kh - 1) * dh + 1, reach_w = (kw - 1) * dw + 1;
    if (h + 2 * pt < reach_h || w + 2 * pl < reach_w) continue;
    /* Pads at the end as at the start, plus one more output in some cases (ceil mode's overhang). */
    const size_t ho = (h + 2 * pt - reach_h) / sh + 1 + mp_rnd(0, 1),
                 wo = (w + 2 * pl - reach_w) / sw + 1 + mp_rnd(0, 1);
    snprintf(g_case, sizeof g_case, "maxpool %zux%zu k%zux%zu s%zu,%zu d%zu,%zu p%zu,%zu -> %zux%zu", h, w, kh, kw, sh,
             sw, dh, dw, pt, pl, ho, wo);
    ptrdiff_t *rs = malloc(ho * sizeof(ptrdiff_t)), *rl = malloc(ho * sizeof(ptrdiff_t)),
              *rh = malloc(ho * sizeof(ptrdiff_t));
    ptrdiff_t *cs = malloc(wo * sizeof(ptrdiff_t)), *cl = malloc(wo * sizeof(ptrdiff_t)),
              *ch = malloc(wo * sizeof(ptrdiff_t));
    axis(ho, h, kh, sh, dh, pt, rs, rl, rh);
    axis(wo, w, kw, sw, dw, pl, cs, cl, ch);
    ptrdiff_t col_lo[8], col_hi[8];
    tap_columns(wo, w, kw, dw, cs, col_lo, col_hi);
    float* x = malloc(planes * h * w * sizeof(float));
    float* y = malloc(planes * ho * wo * sizeof(float));
    float* ref = malloc(planes * ho * wo * sizeof(float));
    float* row = malloc((w + 16) * sizeof(float));
    for (size_t k = 0; k < planes * h * w; k++) x[k] = (float)((k * 7919) % 1009) - 500.0f + 0.25f;
    for (size_t p = 0; p < planes; p++)
      for (size_t oy = 0; oy < ho; oy++)
        for (size_t ox = 0; ox < wo; ox++) {
          float m = -FLT_MAX;
          for (size_t ky = 0; ky < kh; ky++)
            for (size_t kx = 0; kx < kw; kx++) {
              const ptrdiff_t iy = rs[oy] + (ptrdiff_t)(ky * dh), ix = cs[ox] + (ptrdiff_t)(kx * dw);
              if (iy < 0 || iy >= (ptrdiff_t)h || ix < 0 || ix >= (ptrdiff_t)w) continue;
              const float v = x[(p * h + (size_t)iy) * w + (size_t)ix];
              if (v > m) m = v;
            }
          ref[(p * ho + oy) * wo + ox] = m;
        }
    const sparrow_maxpool_shape s = {h, w, ho, wo, dh, kw, sw, dw, pl, rs, rl, rh, col_lo, col_hi};
    memset(y, 0xFF, planes * ho * wo * sizeof(float));
    sparrow_maxpool_f32(&s, x, y, planes, row);
    size_t bad = planes * ho * wo;
    for (size_t k = 0; k < planes * ho * wo && bad == planes * ho * wo; k++)
      if (y[k] != ref[k]) bad = k;
    if (bad < planes * ho * wo)
      fail("y[%zu] = %g, expected %g", bad, (double)y[bad], (double)ref[bad]);
    else
      g_passed++;
    free(rs), free(rl), free(rh), free(cs), free(cl), free(ch), free(x), free(y), free(ref), free(row);
  }
  g_case[0] = 0;
  printf("  %-34s %6zu checks passed\n", "max pooling", g_passed - passed_before);
  test_maxpool_2x2(seed);
  test_maxpool_u8(seed, cases);
}

/* Byte planes (sparrow_maxpool_u8), uint8 and int8 (flip 0x80: a signed compare): random windows
 * as above on maps up to 100 wide (the 16-byte passes at strides 1 and 2, the plain one at 3, the
 * edges), bytes over the whole range with ties, against the plain window loop in the data's own
 * order; an output with no input tap is the type's minimum. Exact equality. */
void test_maxpool_u8(uint64_t seed, long cases) {
  mp_state = seed ^ 0x5A8ull;
  const size_t passed_before = g_passed;
  for (long i = 0; i < cases; i++) {
    const size_t kh = mp_rnd(1, 4), kw = mp_rnd(1, 5), sh = mp_rnd(1, 3), sw = mp_rnd(1, 3);
    const size_t dh = mp_rnd(1, 2), dw = mp_rnd(1, 2), pt = mp_rnd(0, kh - 1), pl = mp_rnd(0, kw - 1);
    const size_t h = mp_rnd(1, 12), w = mp_rnd(1, 100), planes = mp_rnd(1, 3);
    const int signed_data = (int)mp_rnd(0, 1);
    const size_t reach_h = (kh - 1) * dh + 1, reach_w = (kw - 1) * dw + 1;
    if (h + 2 * pt < reach_h || w + 2 * pl < reach_w) continue;
    const size_t ho = (h + 2 * pt - reach_h) / sh + 1 + mp_rnd(0, 1),
                 wo = (w + 2 * pl - reach_w) / sw + 1 + mp_rnd(0, 1);
    snprintf(g_case, sizeof g_case, "maxpool %s %zux%zu k%zux%zu s%zu,%zu d%zu,%zu p%zu,%zu -> %zux%zu",
             signed_data ? "s8" : "u8", h, w, kh, kw, sh, sw, dh, dw, pt, pl, ho, wo);
    ptrdiff_t *rs = malloc(ho * sizeof(ptrdiff_t)), *rl = malloc(ho * sizeof(ptrdiff_t)),
              *rh = malloc(ho * sizeof(ptrdiff_t));
    ptrdiff_t *cs = malloc(wo * sizeof(ptrdiff_t)), *cl = malloc(wo * sizeof(ptrdiff_t)),
              *ch = malloc(wo * sizeof(ptrdiff_t));
    axis(ho, h, kh, sh, dh, pt, rs, rl, rh);
    axis(wo, w, kw, sw, dw, pl, cs, cl, ch);
    ptrdiff_t col_lo[8], col_hi[8];
    tap_columns(wo, w, kw, dw, cs, col_lo, col_hi);
    uint8_t* x = malloc(planes * h * w);
    uint8_t* y = malloc(planes * ho * wo);
    uint8_t* ref = malloc(planes * ho * wo);
    uint8_t* row = malloc(w + 64);
    for (size_t k = 0; k < planes * h * w; k++)
      x[k] = (uint8_t)(mp_rnd(0, 4) == 0 ? mp_rnd(0, 3) * 85 : mp_rnd(0, 255));
    for (size_t p = 0; p < planes; p++)
      for (size_t oy = 0; oy < ho; oy++)
        for (size_t ox = 0; ox < wo; ox++) {
          int m = signed_data ? -128 : 0;
          for (size_t ky = 0; ky < kh; ky++)
            for (size_t kx = 0; kx < kw; kx++) {
              const ptrdiff_t iy = rs[oy] + (ptrdiff_t)(ky * dh), ix = cs[ox] + (ptrdiff_t)(kx * dw);
              if (iy < 0 || iy >= (ptrdiff_t)h || ix < 0 || ix >= (ptrdiff_t)w) continue;
              const uint8_t b = x[(p * h + (size_t)iy) * w + (size_t)ix];
              const int v = signed_data ? (int)(int8_t)b : (int)b;
              if (v > m) m = v;
            }
          ref[(p * ho + oy) * wo + ox] = (uint8_t)m;
        }
    const sparrow_maxpool_shape s = {h, w, ho, wo, dh, kw, sw, dw, pl, rs, rl, rh, col_lo, col_hi};
    memset(y, 0x5C, planes * ho * wo);
    sparrow_maxpool_u8(&s, x, y, planes, row, signed_data ? 0x80 : 0);
    size_t bad = planes * ho * wo;
    for (size_t k = 0; k < planes * ho * wo && bad == planes * ho * wo; k++)
      if (y[k] != ref[k]) bad = k;
    if (bad < planes * ho * wo)
      fail("y[%zu] = %d, expected %d", bad, y[bad], ref[bad]);
    else
      g_passed++;
    free(rs), free(rl), free(rh), free(cs), free(cl), free(ch), free(x), free(y), free(ref), free(row);
  }
  g_case[0] = 0;
  printf("  %-34s %6zu checks passed\n", "max pooling, bytes", g_passed - passed_before);
}

/* 2x2 stride-2 windows without padding (a vector pass of their own on x86): every width 1-70,
 * odd heights, several planes, values with NaNs, signed zeros and ties among them. The reference
 * folds as the plain path does (MAXF(m, v) = v > m ? v : m; the two rows first, then -FLT_MAX,
 * the even column, the odd one): bit-for-bit equality. */
void test_maxpool_2x2(uint64_t seed) {
  mp_state = seed ^ 0x2B2ull;
  const size_t passed_before = g_passed;
  for (size_t w = 1; w <= 70; w++) {
    const size_t h = mp_rnd(2, 7), planes = mp_rnd(1, 3), ho = h / 2, wo = w / 2;
    if (wo == 0) continue;
    snprintf(g_case, sizeof g_case, "maxpool 2x2/2 %zux%zu -> %zux%zu, %zu planes", h, w, ho, wo, planes);
    ptrdiff_t *rs = malloc(ho * sizeof(ptrdiff_t)), *rl = malloc(ho * sizeof(ptrdiff_t)),
              *rh = malloc(ho * sizeof(ptrdiff_t));
    ptrdiff_t *cs = malloc(wo * sizeof(ptrdiff_t)), *cl = malloc(wo * sizeof(ptrdiff_t)),
              *ch = malloc(wo * sizeof(ptrdiff_t));
    axis(ho, h, 2, 2, 1, 0, rs, rl, rh);
    axis(wo, w, 2, 2, 1, 0, cs, cl, ch);
    ptrdiff_t col_lo[2] = {0, 0}, col_hi[2] = {(ptrdiff_t)wo, (ptrdiff_t)wo};
    float* x = malloc(planes * h * w * sizeof(float));
    float* y = malloc(planes * ho * wo * sizeof(float));
    float* ref = malloc(planes * ho * wo * sizeof(float));
    float* row = malloc((w + 16) * sizeof(float));
    const float special[] = {NAN, -0.0f, 0.0f, -FLT_MAX, 1.5f, -1.5f};
    for (size_t k = 0; k < planes * h * w; k++)
      x[k] = mp_rnd(0, 3) == 0 ? special[mp_rnd(0, 5)] : (float)mp_rnd(0, 6) - 3.0f;
#define MAXF_REF(m, v) ((v) > (m) ? (v) : (m))
    for (size_t p = 0; p < planes; p++)
      for (size_t oy = 0; oy < ho; oy++)
        for (size_t ox = 0; ox < wo; ox++) {
          const float* a = x + (p * h + 2 * oy) * w + 2 * ox;
          const float e = MAXF_REF(a[0], a[w]), d = MAXF_REF(a[1], a[w + 1]);
          const float m = MAXF_REF(-FLT_MAX, e);
          ref[(p * ho + oy) * wo + ox] = MAXF_REF(m, d);
        }
#undef MAXF_REF
    const sparrow_maxpool_shape s = {h, w, ho, wo, 1, 2, 2, 1, 0, rs, rl, rh, col_lo, col_hi};
    memset(y, 0xFF, planes * ho * wo * sizeof(float));
    sparrow_maxpool_f32(&s, x, y, planes, row);
    if (memcmp(y, ref, planes * ho * wo * sizeof(float)) != 0) {
      size_t bad = 0;
      while (memcmp(y + bad, ref + bad, sizeof(float)) == 0) bad++;
      fail("y[%zu] = %g, expected %g (bits differ)", bad, (double)y[bad], (double)ref[bad]);
    } else {
      g_passed++;
    }
    free(rs), free(rl), free(rh), free(cs), free(cl), free(ch), free(x), free(y), free(ref), free(row);
  }
  g_case[0] = 0;
  printf("  %-34s %6zu checks passed\n", "max pooling 2x2/2 (NaN, -0)", g_passed - passed_before);
}
