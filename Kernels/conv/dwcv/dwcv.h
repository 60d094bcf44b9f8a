/* Depthwise convolution with channels in the vector lanes (the driver: Kernels/conv/dwcv.c).
 *
 * A block of L channels (L = the ISA's lanes: 16 AVX-512, 8 AVX2, 4 NEON, 1 scalar) is copied
 * pixel-major into a zero-padded buffer t (padded row r, column q at t[(r * cols + q) * L]); one
 * call computes every output pixel of the block:
 *   out[(oy * wo + ox) * L + l] = clamp(bias[l] + sum_{t < taps} w[t * L + l] *
 *                                       t[oy * row_step + ox * col_step + toff[t] + l], lo, hi)
 * four output pixels at a time (one weight load feeds four FMA chains). Every lane is a full
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
#define SPARROW_DWCV_BODY(VT, L, CLAMP)                                                                       \
  const VT zero = {0}, vlo = zero + a->lo, vhi = zero + a->hi, vb = SPARROW_DWCV_LOAD(VT, a->bias);           \
  const size_t cs = a->col_step, taps = a->taps;                                                              \
  for (size_t oy = 0; oy < a->ho; oy++) {                                                                     \
    const float* r = a->t + oy * a->row_step;                                                                 \
    float* o = a->out + oy * a->wo * (L);                                                                     \
    size_t ox = 0;                                                                                            \
    for (; ox + 4 <= a->wo; ox += 4) {                                                                        \
      VT c0 = vb, c1 = vb, c2 = vb, c3 = vb;                                                                  \
      const float* p = r + ox * cs;                                                                           \
      for (size_t t = 0; t < taps; t++) {                                                                     \
        const VT wt = SPARROW_DWCV_LOAD(VT, a->w + t * (L));                                                  \
        const float* q = p + a->toff[t];                                                                      \
        c0 += SPARROW_DWCV_LOAD(VT, q) * wt;                                                                  \
        c1 += SPARROW_DWCV_LOAD(VT, q + cs) * wt;                                                             \
        c2 += SPARROW_DWCV_LOAD(VT, q + 2 * cs) * wt;                                                         \
        c3 += SPARROW_DWCV_LOAD(VT, q + 3 * cs) * wt;                                                         \
      }                                                                                                       \
      c0 = CLAMP(c0, vlo, vhi), c1 = CLAMP(c1, vlo, vhi), c2 = CLAMP(c2, vlo, vhi), c3 = CLAMP(c3, vlo, vhi); \
      memcpy(o + ox * (L), &c0, sizeof c0);                                                                   \
      memcpy(o + (ox + 1) * (L), &c1, sizeof c1);                                                             \
      memcpy(o + (ox + 2) * (L), &c2, sizeof c2);                                                             \
      memcpy(o + (ox + 3) * (L), &c3, sizeof c3);                                                             \
    }                                                                                                         \
    for (; ox < a->wo; ox++) {                                                                                \
      VT c0 = vb;                                                                                             \
      const float* p = r + ox * cs;                                                                           \
      for (size_t t = 0; t < taps; t++)                                                                       \
        c0 += SPARROW_DWCV_LOAD(VT, p + a->toff[t]) * SPARROW_DWCV_LOAD(VT, a->w + t * (L));                  \
      c0 = CLAMP(c0, vlo, vhi);                                                                               \
      memcpy(o + ox * (L), &c0, sizeof c0);                                                                   \
    }                                                                                                         \
  }

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
#if defined(__aarch64__)
void sparrow_dwcv_f32_4__neon(const sparrow_dwcv_args* a);
#endif
#endif
