/* Helpers shared by the 1x128 AVX-512F microkernels (CSR, N:M): the balanced column split into
 * panels of up to 128 columns, X block copies into an aligned stack buffer and the unrolled
 * FMA / load / store macros over up to 8 zmm accumulators named A##0 .. A##7 (the last vector
 * of a panel masked: AVX-512 masks cost nothing, so one panel function per vector count serves
 * full and partial panels). Included only inside `#if defined(__x86_64__)`, after
 * avx2-1x64.h (whose image-window panel builder these kernels reuse: an always-inline AVX2
 * function inlines into an AVX-512F one). */
#ifndef SPARROW_SPMM_AVX512_1X128_H
#define SPARROW_SPMM_AVX512_1X128_H
#include <immintrin.h>

#include "avx2-1x64.h"

#define SPARROW_AVX512 __attribute__((target("avx512f,avx2,fma"), always_inline)) static inline
#define SPARROW_AVX512_FN __attribute__((target("avx512f,avx2,fma"), noinline)) static

/* Runs of one output row per column: a 128-column panel has at most 128. */
#define WIN_RUNS_MAX512 128

/* Panel width: n split into ceil(n / 128) panels of equal width (a multiple of 16), so that
 * no panel is a sliver (N = 784 is 7 x 112, not 6 x 128 + 16). */
static inline size_t z_panel_width(size_t n) {
  const size_t panels = (n + 127) / 128;
  const size_t per = (n + panels - 1) / panels;
  return (per + 15) / 16 * 16;
}

/* The mask of the last of nv vectors holding `cols` columns. */
static inline __mmask16 z_tail(size_t cols, int nv) {
  return (__mmask16)(0xFFFFu >> ((size_t)nv * 16 - cols));
}

/* Copies X rows [k0, k1) of a panel of nv vectors (the last one under `tail`) into buf, rows
 * nv*16 floats apart; rows at or past K and masked-out rows become zeros (never read). X is
 * never read past the panel's columns. */
SPARROW_AVX512 void z_pack_block(float* buf, const char* x, size_t xs, size_t k0, size_t k1, size_t K,
                                 const uint8_t* km, const int nv, __mmask16 tail) {
  for (size_t k = k0; k < k1; k++, buf += 16 * nv) {
    const float* xr = (const float*)(x + k * xs);
    /* Rows of X are pages apart: the hardware prefetcher does not follow them. */
    if (k + 8 < K)
      for (int i = 0; i < nv; i += 4) _mm_prefetch((const char*)(xr + 16 * i) + 8 * xs, _MM_HINT_T0);
    if (k >= K || (km != NULL && !km[k])) {
      for (int i = 0; i < nv; i++) _mm512_store_ps(buf + 16 * i, _mm512_setzero_ps());
      continue;
    }
    for (int i = 0; i + 1 < nv; i++) _mm512_store_ps(buf + 16 * i, _mm512_loadu_ps(xr + 16 * i));
    _mm512_store_ps(buf + 16 * (nv - 1), _mm512_maskz_loadu_ps(tail, xr + 16 * (nv - 1)));
  }
}

#define ZFMA1(A, I, V, P, NV) \
  if ((NV) > (I)) A##I = _mm512_fmadd_ps(V, _mm512_load_ps((P) + 16 * (I)), A##I)
#define ZLOADFMA(A, V, P, NV)                                                                  \
  do {                                                                                         \
    ZFMA1(A, 0, V, P, NV); ZFMA1(A, 1, V, P, NV); ZFMA1(A, 2, V, P, NV); ZFMA1(A, 3, V, P, NV); \
    ZFMA1(A, 4, V, P, NV); ZFMA1(A, 5, V, P, NV); ZFMA1(A, 6, V, P, NV); ZFMA1(A, 7, V, P, NV); \
  } while (0)
#define ZST1(Y, I, A, NV, TAIL, CLAMP, LO, HI)                                         \
  if ((NV) > (I)) {                                                                    \
    const __m512 c_ = (CLAMP) ? _mm512_min_ps(_mm512_max_ps(A##I, LO), HI) : (A##I); \
    if ((I) == (NV) - 1) _mm512_mask_storeu_ps((Y) + 16 * (I), TAIL, c_);              \
    else _mm512_storeu_ps((Y) + 16 * (I), c_);                                         \
  }
#define ZSTORE(Y, A, NV, TAIL, CLAMP, LO, HI)                                                           \
  do {                                                                                                  \
    ZST1(Y, 0, A, NV, TAIL, CLAMP, LO, HI) ZST1(Y, 1, A, NV, TAIL, CLAMP, LO, HI)                       \
    ZST1(Y, 2, A, NV, TAIL, CLAMP, LO, HI) ZST1(Y, 3, A, NV, TAIL, CLAMP, LO, HI)                       \
    ZST1(Y, 4, A, NV, TAIL, CLAMP, LO, HI) ZST1(Y, 5, A, NV, TAIL, CLAMP, LO, HI)                       \
    ZST1(Y, 6, A, NV, TAIL, CLAMP, LO, HI) ZST1(Y, 7, A, NV, TAIL, CLAMP, LO, HI)                       \
  } while (0)
#define ZLDY1(A, I, Y, NV, TAIL) \
  if ((NV) > (I)) A##I = (I) == (NV) - 1 ? _mm512_maskz_loadu_ps(TAIL, (Y) + 16 * (I)) : _mm512_loadu_ps((Y) + 16 * (I))
#define ZLOADY(A, Y, NV, TAIL)                                                                 \
  do {                                                                                         \
    ZLDY1(A, 0, Y, NV, TAIL); ZLDY1(A, 1, Y, NV, TAIL); ZLDY1(A, 2, Y, NV, TAIL);               \
    ZLDY1(A, 3, Y, NV, TAIL); ZLDY1(A, 4, Y, NV, TAIL); ZLDY1(A, 5, Y, NV, TAIL);               \
    ZLDY1(A, 6, Y, NV, TAIL); ZLDY1(A, 7, Y, NV, TAIL);                                         \
  } while (0)

/* Calls PANEL##nv(args..., j, cols) for every panel of the balanced split of n. */
#define Z_FOR_PANELS(N, CALL)                                     \
  do {                                                            \
    const size_t width_ = z_panel_width(N);                       \
    for (size_t j = 0; j < (N); j += width_) {                    \
      const size_t cols = (N) - j < width_ ? (N) - j : width_;    \
      switch ((cols + 15) / 16) {                                 \
        case 1: CALL(1); break;                                   \
        case 2: CALL(2); break;                                   \
        case 3: CALL(3); break;                                   \
        case 4: CALL(4); break;                                   \
        case 5: CALL(5); break;                                   \
        case 6: CALL(6); break;                                   \
        case 7: CALL(7); break;                                   \
        default: CALL(8); break;                                  \
      }                                                           \
    }                                                             \
  } while (0)

#endif
