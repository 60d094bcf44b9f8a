/* Depthwise convolution with channels in the vector lanes (the driver: Kernels/conv/dwcv.c).
 *
 * A block of L channels (L = the ISA's lanes: 16 AVX-512, 8 AVX2, 4 NEON, 1 scalar) is copied
 * pixel-major into a zero-padded buffer t (padded row r, column q at t[(r * cols + q) * L]); one
 * call computes every output pixel of the block:
 *   out[(oy * wo + ox) * L + l] = clamp(bias[l] + sum_{t < taps} w[t * L + l] *
 *                                       t[oy * row_step + ox * col_step + toff[t] + l], lo, hi)
 * four output pixels at a time (one weight vector feeds four FMA chains; 3 x 3 windows keep all
 * nine in registers). Every lane is a full
 * channel's work, however narrow the map: the row kernels (dwconv/) fill 7 of 16 lanes on a 7x7
 * map and pay a padded copy per channel. The sum runs over t in order; the clamp keeps NaN. */
#ifndef SPARROW_DWCV_H
#define SPARROW_DWCV_H
#include <stddef.h>
#include <string.h>

typedef struct {
  size_t ho, wo, taps;
  size_t row_step, col_step; /* floats between output rows' / adjacent outputs' window origins */
  const size_t* toff;        /* per tap, floats from the window origin */
  const float* t;            /* the padded block, L floats per pixel */
  const float* w;            /* taps x L weights */
  const float* bias;         /* L */
  float lo, hi;
  float* out; /* ho * wo x L */
} sparrow_dwcv_args;

typedef void (*sparrow_dwcv_ukernel_fn)(const sparrow_dwcv_args* a);

/* The kernel body for vector type VT of L lanes (L = 1: VT is float) with integer vector VI
 * for the clamp's masks. */
#define SPARROW_DWCV_LOAD(VT, p) \
  ({                             \
    VT v_;                       \
    memcpy(&v_, (p), sizeof v_); \
    v_;                          \
  })
/* Output pixels in flat order, four per block (a block may span rows: each pixel has its own
 * window origin; the last block repeats its last pixel and stores only the real ones), so a
 * 7-wide map runs 12 blocks and a single pixel instead of 7 blocks and 21 single pixels. WV(VT, L, t)
 * is tap t's weight vector. */
#define SPARROW_DWCV_PIXELS(VT, L, CLAMP, TAPS, WV)                               \
  for (size_t q = 0; q < npix; q += 4) {                                          \
    const float* p[4];                                                            \
    const size_t valid = npix - q < 4 ? npix - q : 4;                             \
    for (size_t i = 0; i < 4; i++) {                                              \
      p[i] = a->t + oy * a->row_step + ox * cs;                                   \
      if (i + 1 < valid && ++ox == a->wo) ox = 0, oy++;                           \
    }                                                                             \
    if (valid == 4 && ++ox == a->wo) ox = 0, oy++;                                \
    VT c0 = vb, c1 = vb, c2 = vb, c3 = vb;                                        \
    for (size_t t = 0; t < (TAPS); t++) {                                         \
      const VT wt = WV(VT, L, t);                                                 \
      const size_t d = a->toff[t];                                                \
      c0 += SPARROW_DWCV_LOAD(VT, p[0] + d) * wt;                                 \
      c1 += SPARROW_DWCV_LOAD(VT, p[1] + d) * wt;                                 \
      c2 += SPARROW_DWCV_LOAD(VT, p[2] + d) * wt;                                 \
      c3 += SPARROW_DWCV_LOAD(VT, p[3] + d) * wt;                                 \
    }                                                                             \
    float* o = a->out + q * (L);                                                  \
    c0 = CLAMP(c0, vlo, vhi);                                                     \
    memcpy(o, &c0, sizeof c0);                                                    \
    if (valid > 1) c1 = CLAMP(c1, vlo, vhi), memcpy(o + (L), &c1, sizeof c1);     \
    if (valid > 2) c2 = CLAMP(c2, vlo, vhi), memcpy(o + 2 * (L), &c2, sizeof c2); \
    if (valid > 3) c3 = CLAMP(c3, vlo, vhi), memcpy(o + 3 * (L), &c3, sizeof c3); \
  }
/* The kernel body for vector type VT of L lanes (L = 1: VT is float); 3 x 3 windows keep their
 * nine weight vectors in registers. */
#define SPARROW_DWCV_BODY(VT, L, CLAMP)                                                             \
  const VT zero = {0}, vlo = zero + a->lo, vhi = zero + a->hi, vb = SPARROW_DWCV_LOAD(VT, a->bias); \
  const size_t cs = a->col_step, npix = a->ho * a->wo;                                              \
  size_t oy = 0, ox = 0;                                                                            \
  if (a->taps == 9) {                                                                               \
    VT w9[9];                                                                                       \
    for (size_t t = 0; t < 9; t++) w9[t] = SPARROW_DWCV_LOAD(VT, a->w + t * (L));                   \
    SPARROW_DWCV_PIXELS(VT, L, CLAMP, 9, SPARROW_DWCV_W9)                                           \
  } else {                                                                                          \
    SPARROW_DWCV_PIXELS(VT, L, CLAMP, a->taps, SPARROW_DWCV_WT)                                     \
  }
#define SPARROW_DWCV_W9(VT, L, t) w9[t]
#define SPARROW_DWCV_WT(VT, L, t) SPARROW_DWCV_LOAD(VT, a->w + (t) * (L))

/* Lanewise v < lo ? lo : (v > hi ? hi : v) through masks (NaN fails both compares and stays). */
#define SPARROW_DWCV_CLAMP_VEC(VI, v, lo, hi)                                                    \
  ({                                                                                             \
    const VI below_ = (VI)((v) < (lo)), above_ = (VI)((v) > (hi));                               \
    const VI kept_ = ((VI)(v) & ~(below_ | above_)) | ((VI)(lo) & below_) | ((VI)(hi) & above_); \
    (__typeof__(v))kept_;                                                                        \
  })

void sparrow_dwcv_f32_1__scalar(const sparrow_dwcv_args* a);
#if defined(__x86_64__)
void sparrow_dwcv_f32_8__avx2(const sparrow_dwcv_args* a);
void sparrow_dwcv_f32_16__avx512f(const sparrow_dwcv_args* a);
#endif

/* The block's transposes in registers (x86; elsewhere the driver's generic copies). In: pixel p
 * (p < hw) of channels [0, n) of x (planes hw apart) to t + pos[p] * L, skipped where pos[p] is
 * SIZE_MAX, lanes n.. zero; nothing else of t is written. Out: pixels [0, howo) of o (L floats
 * each) to rows [0, n) of y (howo apart). */
typedef void (*sparrow_dwcv_in_fn)(const float* x, size_t hw, size_t n, const size_t* pos, float* t);
typedef void (*sparrow_dwcv_out_fn)(const float* o, size_t howo, size_t n, float* y);
#if defined(__x86_64__)
void sparrow_dwcv_in_f32__avx2(const float* x, size_t hw, size_t n, const size_t* pos, float* t);
void sparrow_dwcv_out_f32__avx2(const float* o, size_t howo, size_t n, float* y);
void sparrow_dwcv_in_f32__avx512f(const float* x, size_t hw, size_t n, const size_t* pos, float* t);
void sparrow_dwcv_out_f32__avx512f(const float* o, size_t howo, size_t n, float* y);
#endif
#if defined(__aarch64__)
void sparrow_dwcv_f32_4__neon(const sparrow_dwcv_args* a);
#endif
#endif
