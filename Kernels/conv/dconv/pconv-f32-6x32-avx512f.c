/* Pixel-major dense direct convolution, AVX-512F, several panels at once (dconv.h,
 * sparrow_pconv_wide_fn): 6 pixels x 32 output channels (two panels) or 6 x 64 (four). Per k one
 * 16-channel weight load per panel and six pixel broadcasts feed 12 or 24 accumulators: 12 FMAs
 * per 8 loads, 24 per 10, where the one-panel kernel (pconv-f32-6x16-avx512f.c) issues 6 per 7
 * and is bound by the load ports on Intel cores; the four-panel form reaches the FMA bound. The
 * chains (12 or 24) also cover the FMA latency, so the sum runs over k in order (no even/odd
 * split). The block is then biased, clamped and stored as the one-panel kernel's.
 *
 * Measured (Intel Xeon family 6 model 207, AVX-512, 1 thread, C harness over every panel of
 * ResNet-18's 3x3 layers, unsliced K): 64 channels at 56x56 one panel 2.44 ms, two 1.77, four
 * 1.44; 128 at 28x28 2.38, 1.64, 1.36. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "dconv.h"

#define T __attribute__((target("avx512f,avx2,fma")))
#define NR SPARROW_PCONV_NR
#define MR SPARROW_PCONV_MR

/* The K loop of NQ panels for the first NP pixels; c[g * MR + i] is panel g, pixel i. The
 * constant loops unroll fully, so the accumulators live in registers. */
#define PBLOCK(NAME, NQ, NP)                                                                                       \
  static inline T void NAME(size_t K, const float* wp, size_t wstride, const size_t* koff, const float* const* px, \
                            __m512 c[NQ * MR]) {                                                                   \
    __m512 a[NQ * MR];                                                                                             \
    for (size_t i = 0; i < NQ * MR; i++) a[i] = c[i];                                                              \
    const float* p[MR];                                                                                            \
    for (size_t i = 0; i < MR; i++) p[i] = px[i];                                                                  \
    for (size_t k = 0; k < K; k++) {                                                                               \
      const size_t o = koff[k];                                                                                    \
      __m512 w[NQ];                                                                                                \
      _Pragma("clang loop unroll(full)") for (size_t g = 0; g < NQ; g++) w[g] =                                    \
          _mm512_load_ps(wp + g * wstride + k * NR);                                                               \
      _Pragma("clang loop unroll(full)") for (size_t i = 0; i < NP; i++) {                                         \
        const __m512 s = _mm512_set1_ps(p[i][o]);                                                                  \
        _Pragma("clang loop unroll(full)") for (size_t g = 0; g < NQ; g++) a[g * MR + i] =                         \
            _mm512_fmadd_ps(s, w[g], a[g * MR + i]);                                                               \
      }                                                                                                            \
    }                                                                                                              \
    for (size_t i = 0; i < NQ * MR; i++) c[i] = a[i];                                                              \
  }
PBLOCK(block2x6, 2, 6)
PBLOCK(block2x4, 2, 4)
PBLOCK(block2x2, 2, 2)
PBLOCK(block2x1, 2, 1)
PBLOCK(block4x6, 4, 6)
PBLOCK(block4x4, 4, 4)
PBLOCK(block4x2, 4, 2)
PBLOCK(block4x1, 4, 1)
#undef PBLOCK

static inline T __mmask16 lanes(size_t n) { return n >= NR ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u); }

/* One panel's full block (6 pixels r[0..5] x 16 channels) stored as channel rows of 6 floats
 * (y + j * y_plane, j < chans) by a transpose in registers: per 128-bit lane L, unpacks and
 * shuffles gather pixels 0-3 (u) and 4-5 (v) of channel 4L + m, and each row is a 4-float and a
 * 2-float store of those lanes (AVX-512F alone: no masked 256-bit stores). 12 shuffles, 24 lane
 * extracts and 32 stores where the stack tile took 6 vector stores and 96 scalar loads and
 * stores. */
static inline T void store_rows(const __m512* r, size_t chans, float* y, size_t y_plane) {
  const __m512 z = _mm512_setzero_ps();
  const __m512 t0 = _mm512_unpacklo_ps(r[0], r[1]), t1 = _mm512_unpackhi_ps(r[0], r[1]);
  const __m512 t2 = _mm512_unpacklo_ps(r[2], r[3]), t3 = _mm512_unpackhi_ps(r[2], r[3]);
  const __m512 t4 = _mm512_unpacklo_ps(r[4], r[5]), t5 = _mm512_unpackhi_ps(r[4], r[5]);
  const __m512 u[4] = {_mm512_shuffle_ps(t0, t2, 0x44), _mm512_shuffle_ps(t0, t2, 0xEE),
                       _mm512_shuffle_ps(t1, t3, 0x44), _mm512_shuffle_ps(t1, t3, 0xEE)};
  const __m512 v[4] = {_mm512_shuffle_ps(t4, z, 0x44), _mm512_shuffle_ps(t4, z, 0xEE), _mm512_shuffle_ps(t5, z, 0x44),
                       _mm512_shuffle_ps(t5, z, 0xEE)};
#define ROWS(L)                                                                                                 \
  for (size_t m = 0; m < 4 && 4 * (L) + m < chans; m++) {                                                       \
    float* yr = y + (4 * (L) + m) * y_plane;                                                                    \
    _mm_storeu_ps(yr, (L) == 0 ? _mm512_castps512_ps128(u[m]) : _mm512_extractf32x4_ps(u[m], L));               \
    _mm_storel_pi((__m64*)(yr + 4), (L) == 0 ? _mm512_castps512_ps128(v[m]) : _mm512_extractf32x4_ps(v[m], L)); \
  }
  ROWS(0)
  ROWS(1)
  ROWS(2)
  ROWS(3)
#undef ROWS
}

/* Bias, clamp and store of nq panels' block c (panel g's pixel i at c[g * MR + i]). */
static inline T void finish(size_t nq, __m512* c, size_t pixels, size_t chans, const float* bias, float lo, float hi,
                            float* y, size_t y_plane, size_t y_pixel) {
  const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
  for (size_t g = 0; g < nq; g++) {
    const size_t cg = chans > g * NR ? chans - g * NR : 0;
    const __m512 b = bias != NULL && cg > 0 ? _mm512_maskz_loadu_ps(lanes(cg), bias + g * NR) : _mm512_setzero_ps();
    for (size_t i = 0; i < MR; i++)
      c[g * MR + i] = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(c[g * MR + i], b), vlo), vhi);
  }
  if (y_plane == 1) {
    /* Row-major output (a linear layer): each pixel's channels are one run. */
    for (size_t g = 0; g < nq && g * NR < chans; g++) {
      const __mmask16 m = lanes(chans - g * NR);
      for (size_t i = 0; i < pixels; i++) _mm512_mask_storeu_ps(y + i * y_pixel + g * NR, m, c[g * MR + i]);
    }
    return;
  }
  if (pixels == MR && y_pixel == 1) {
    for (size_t g = 0; g < nq && g * NR < chans; g++)
      store_rows(c + g * MR, chans - g * NR, y + g * NR * y_plane, y_plane);
    return;
  }
  float t[4 * MR][NR] __attribute__((aligned(64)));
  for (size_t i = 0; i < nq * MR; i++) _mm512_store_ps(t[i], c[i]);
  for (size_t j = 0; j < chans; j++)
    for (size_t i = 0; i < pixels; i++) y[j * y_plane + i * y_pixel] = t[(j / NR) * MR + i][j % NR];
}

#define WIDE(NAME, NQ)                                                                                              \
  T void NAME(size_t K, const float* wp, size_t wstride, const size_t* koff, const float* const* px, size_t pixels, \
              size_t chans, const float* bias, float lo, float hi, float* y, size_t y_plane, size_t y_pixel,        \
              float* part, int first, int last) {                                                                   \
    __m512 c[NQ * MR];                                                                                              \
    /* part is only 32-byte aligned (dconv.h): unaligned loads and stores. */                                       \
    for (size_t i = 0; i < NQ * MR; i++) c[i] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(part + NR * i);       \
    if (pixels > 4)                                                                                                 \
      block##NQ##x6(K, wp, wstride, koff, px, c);                                                                   \
    else if (pixels > 2)                                                                                            \
      block##NQ##x4(K, wp, wstride, koff, px, c);                                                                   \
    else if (pixels > 1)                                                                                            \
      block##NQ##x2(K, wp, wstride, koff, px, c);                                                                   \
    else                                                                                                            \
      block##NQ##x1(K, wp, wstride, koff, px, c);                                                                   \
    if (!last) {                                                                                                    \
      for (size_t i = 0; i < NQ * MR; i++) _mm512_storeu_ps(part + NR * i, c[i]);                                   \
      return;                                                                                                       \
    }                                                                                                               \
    finish(NQ, c, pixels, chans, bias, lo, hi, y, y_plane, y_pixel);                                                \
  }
WIDE(sparrow_pconv_f32_6x32__avx512f, 2)
WIDE(sparrow_pconv_f32_6x64__avx512f, 4)
#undef WIDE
#endif
