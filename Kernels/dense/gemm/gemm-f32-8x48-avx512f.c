/* Packed dense GEMM, AVX-512F, 8 x 48 register block (layout: gemm.h): per k, three 16-float
 * loads of the packed X row, eight broadcasts of the panel's W column (folded into the FMAs as
 * {1to16} memory operands), 24 FMAs into 24 zmm accumulators. MR = 8 divides every channel count
 * of the usual CNNs (no padded rows); NR = 48 with 32- and 16-column blocks and a masked last
 * vector leaves no idle lane on N = 784, 3136, 12544 (ResNet's 28², 56², 112²) and one column
 * each on 49 and 196: such a rest of fewer than 8 columns past a 16-column edge runs per panel and
 * K slice right after the panel's last block (8-lane FMAs, W from cache); N < 8 runs the
 * matrix-vector path (two k per 16-lane FMA over the 8-row panel, W streamed once).
 *
 * Cache blocking (as GotoBLAS / MLAS): K in slices of at most KC = 256 (equal slices); per
 * slice, groups of at most MC_PANELS panels, whose W slices (8 x kc floats each, contiguous in
 * the packed layout) stay in L2 while every 48-column block of X is packed once into a 48 KiB
 * stack panel (L1/L2) and multiplied by each panel of the group. W is thus read from memory (or
 * L3) once per slice and group instead of once per column block, which is what a cold weight
 * costs inside a model. Partial sums go through Y between slices; the epilogue (bias, clamp)
 * runs on the last. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "gemm.h"

#define T __attribute__((target("avx512f,avx2,fma")))
#define MR 8
#define NR 48
#define KC 256
/* 128 panels x 8 rows x 256 k x 4 bytes = 1 MiB of W per slice and group (L2 is 2 MiB). */
#define MC_PANELS 128

#define ROW(i, NV)                                                     \
  {                                                                    \
    const __m512 b = _mm512_set1_ps(wk[i]);                            \
    c##i##0 = _mm512_fmadd_ps(b, x0, c##i##0);                         \
    if (NV >= 2) c##i##1 = _mm512_fmadd_ps(b, x1, c##i##1);            \
    if (NV >= 3) c##i##2 = _mm512_fmadd_ps(b, x2, c##i##2);            \
  }

/* acc[i * 3 + v] = sum over k < kc of W[i][k] * xp[k * NR + v * 16 ...], v < NV. */
#define BLOCK(NV)                                                                                \
  static inline T void block##NV(size_t kc, const float* wp, const float* xp, __m512 acc[24]) {  \
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00;     \
    __m512 c20 = c00, c21 = c00, c22 = c00, c30 = c00, c31 = c00, c32 = c00;                     \
    __m512 c40 = c00, c41 = c00, c42 = c00, c50 = c00, c51 = c00, c52 = c00;                     \
    __m512 c60 = c00, c61 = c00, c62 = c00, c70 = c00, c71 = c00, c72 = c00;                     \
    for (size_t k = 0; k < kc; k++) {                                                            \
      const float* xr = xp + k * NR;                                                             \
      const float* wk = wp + k * MR;                                                             \
      const __m512 x0 = _mm512_load_ps(xr);                                                      \
      const __m512 x1 = NV >= 2 ? _mm512_load_ps(xr + 16) : x0;                                  \
      const __m512 x2 = NV >= 3 ? _mm512_load_ps(xr + 32) : x0;                                  \
      ROW(0, NV) ROW(1, NV) ROW(2, NV) ROW(3, NV) ROW(4, NV) ROW(5, NV) ROW(6, NV) ROW(7, NV)    \
    }                                                                                            \
    acc[0] = c00, acc[1] = c01, acc[2] = c02, acc[3] = c10, acc[4] = c11, acc[5] = c12;          \
    acc[6] = c20, acc[7] = c21, acc[8] = c22, acc[9] = c30, acc[10] = c31, acc[11] = c32;        \
    acc[12] = c40, acc[13] = c41, acc[14] = c42, acc[15] = c50, acc[16] = c51, acc[17] = c52;    \
    acc[18] = c60, acc[19] = c61, acc[20] = c62, acc[21] = c70, acc[22] = c71, acc[23] = c72;    \
  }
BLOCK(1)
BLOCK(2)
BLOCK(3)

/* X rows [0, kc) of one block of `cols` <= 48 columns into xp (stride NR, zeros past cols). An
 * inactive row (mask byte 0) is never read: zeros instead (W is finite, so 0 * w adds nothing).
 * Masked loads never touch columns past cols. */
static inline T void pack48(size_t kc, const float* x, size_t xs, const uint8_t* mask, size_t cols, float* xp) {
  const __mmask16 m0 = cols >= 16 ? 0xFFFF : (__mmask16)((1u << cols) - 1);
  const __mmask16 m1 = cols >= 32 ? 0xFFFF : cols <= 16 ? 0 : (__mmask16)((1u << (cols - 16)) - 1);
  const __mmask16 m2 = cols >= 48 ? 0xFFFF : cols <= 32 ? 0 : (__mmask16)((1u << (cols - 32)) - 1);
  for (size_t k = 0; k < kc; k++) {
    const float* xr = x + k * xs;
    float* d = xp + k * NR;
    /* The rows are a plane apart: the hardware prefetcher does not follow kc streams of 192 bytes
     * per block. The block after next, a line per 16 columns. */
    _mm_prefetch((const char*)(xr + 2 * NR), _MM_HINT_T0);
    _mm_prefetch((const char*)(xr + 2 * NR + 16), _MM_HINT_T0);
    _mm_prefetch((const char*)(xr + 2 * NR + 32), _MM_HINT_T0);
    if (mask != NULL && !mask[k]) {
      _mm512_store_ps(d, _mm512_setzero_ps());
      _mm512_store_ps(d + 16, _mm512_setzero_ps());
      _mm512_store_ps(d + 32, _mm512_setzero_ps());
      continue;
    }
    _mm512_store_ps(d, _mm512_maskz_loadu_ps(m0, xr));
    _mm512_store_ps(d + 16, _mm512_maskz_loadu_ps(m1, xr + 16));
    _mm512_store_ps(d + 32, _mm512_maskz_loadu_ps(m2, xr + 32));
  }
}

/* One column of the panel over all of K: out[0..8) = W_panel . x[:, j] (x already at column j). */
static inline T void gemv8(size_t K, const float* wp, const float* x, size_t xs, const uint8_t* mask, float out[8]) {
#define XK(k) (mask != NULL && !mask[k] ? 0.0f : x[(k) * xs])
  __m512 a0 = _mm512_setzero_ps(), a1 = a0;
  size_t k = 0;
  /* W[k][0..8) and W[k+1][0..8) are one 16-float load; x_k in the low half, x_{k+1} high. */
  for (; k + 4 <= K; k += 4) {
    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(wp + k * MR),
                         _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(XK(k)), _mm512_set1_ps(XK(k + 1))), a0);
    a1 = _mm512_fmadd_ps(_mm512_loadu_ps(wp + (k + 2) * MR),
                         _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(XK(k + 2)), _mm512_set1_ps(XK(k + 3))), a1);
  }
  for (; k + 2 <= K; k += 2)
    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(wp + k * MR),
                         _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(XK(k)), _mm512_set1_ps(XK(k + 1))), a0);
  const __m512 s = _mm512_add_ps(a0, a1);
  __m256 r = _mm256_add_ps(_mm512_castps512_ps256(s), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(s), 1)));
  if (k < K) r = _mm256_fmadd_ps(_mm256_loadu_ps(wp + k * MR), _mm256_set1_ps(XK(k)), r);
  _mm256_storeu_ps(out, r);
#undef XK
}

/* The last r < 8 columns (past the last 16-column edge) of panel p over the K slice [0, kc), while
 * the panel's W slice is in cache from its last column block (the matrix-vector loop per column
 * on the slice). Stores like store_panel. The matrix-vector path streamed all
 * of W again for them: on MobileNetV2's N = 49 layers (a 48-column block and one more), the
 * 320 -> 1280 one read its 1.6 MB weight twice. */
static inline T void rest_panel(const sparrow_matrix* w, size_t p, size_t kc, const float* wp, const float* x,
                                size_t xs, const uint8_t* mask, size_t r, float* y0, size_t ys, const float* bias,
                                int first, int last, float lo, float hi) {
  const size_t rows = sparrow_gemm_rows(w->m, p, MR);
  for (size_t c = 0; c < r; c++) {
    float out[8];
    gemv8(kc, wp, x + c, xs, mask, out);
    for (size_t i = 0; i < rows; i++) {
      const size_t row = p * MR + i;
      float* y = y0 + row * ys + c;
      float v = out[i];
      if (!first) v += *y;
      if (last) v = sparrow_clampf(v + (bias != NULL ? bias[row] : 0.0f), lo, hi);
      *y = v;
    }
  }
}

/* Rows of panel p from the accumulators: columns [0, cols) of the block at y0; the first slice
 * stores, later ones add what Y holds; the last adds the bias and clamps. */
static inline T void store_panel(const sparrow_matrix* w, size_t p, const __m512 acc[24], size_t cols, float* y0,
                                 size_t ys, const float* bias, int first, int last, __m512 lo, __m512 hi) {
  const size_t nv = (cols + 15) / 16, rows = sparrow_gemm_rows(w->m, p, MR);
  const __mmask16 tail = (__mmask16)(0xFFFFu >> (nv * 16 - cols));
  for (size_t i = 0; i < rows; i++) {
    const size_t r = p * MR + i;
    float* y = y0 + r * ys;
    const __m512 b = _mm512_set1_ps(bias != NULL ? bias[r] : 0.0f);
    for (size_t v = 0; v < nv; v++) {
      const __mmask16 mk = v + 1 == nv ? tail : 0xFFFF;
      __m512 s = acc[i * 3 + v];
      if (!first) s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(mk, y + v * 16));
      if (last) s = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(s, b), lo), hi);
      _mm512_mask_storeu_ps(y + v * 16, mk, s);
    }
  }
}

/* Window blocks (gemm.h): the 8 x 48 block from the packed panel, the last vector masked. */
static T void window_block(size_t kc, const float* wp, const float* xp, size_t cols, float* y, size_t ys, size_t rows,
                           const float* bias, float lo, float hi, int first, int last) {
  __m512 acc[24];
  if (cols > 32) block3(kc, wp, xp, acc);
  else if (cols > 16) block2(kc, wp, xp, acc);
  else block1(kc, wp, xp, acc);
  const size_t nv = (cols + 15) / 16;
  const __mmask16 tail = (__mmask16)(0xFFFFu >> (nv * 16 - cols));
  const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
  for (size_t i = 0; i < rows; i++) {
    float* yr = y + i * ys;
    const __m512 b = _mm512_set1_ps(bias != NULL ? bias[i] : 0.0f);
    for (size_t v = 0; v < nv; v++) {
      const __mmask16 mk = v + 1 == nv ? tail : 0xFFFF;
      __m512 s = acc[i * 3 + v];
      if (!first) s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(mk, yr + v * 16));
      if (last) s = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(s, b), vlo), vhi);
      _mm512_mask_storeu_ps(yr + v * 16, mk, s);
    }
  }
}

T void sparrow_gemm_f32_8x48__avx512f(const sparrow_matrix* w, const uint32_t* units, size_t u0, size_t u1,
                                      const sparrow_ukernel_args* a) {
  const size_t K = w->k, n = a->n, xs = a->x_stride / sizeof(float), ys = a->y_stride / sizeof(float);
  const uint8_t* mask = a->k_mask;
  const float* W = w->u.gemm.w;
  if (a->win != NULL) {
    float xp[KC * NR] __attribute__((aligned(64)));
    sparrow_gemm_window(w, units, u0, u1, a, MR, NR, KC, MC_PANELS, xp, window_block);
    return;
  }
  const __m512 lo = _mm512_set1_ps(a->lo), hi = _mm512_set1_ps(a->hi);
  /* Fewer than 8 columns past the last 16-column edge: with blocks before them, each panel's
   * right after its last block (rest_panel); alone (N < 8), the matrix-vector path. */
  const size_t rest = n % 16 < 8 ? n % 16 : 0, nb = n - rest;
  if (nb > 0) {
    float xp[KC * NR] __attribute__((aligned(64)));
    const size_t slices = sparrow_div_up(K, KC), kcs = sparrow_div_up(K, slices);
    for (size_t kb = 0; kb < K; kb += kcs) {
      const size_t kc = K - kb < kcs ? K - kb : kcs;
      const int first = kb == 0, last = kb + kc == K;
      for (size_t g0 = u0; g0 < u1; g0 += MC_PANELS) {
        const size_t g1 = u1 - g0 < MC_PANELS ? u1 : g0 + MC_PANELS;
        for (size_t j0 = 0; j0 < nb; j0 += NR) {
          const size_t cols = nb - j0 < NR ? nb - j0 : NR;
          pack48(kc, a->x + kb * xs + j0, xs, mask != NULL ? mask + kb : NULL, cols, xp);
          for (size_t u = g0; u < g1; u++) {
            const size_t p = sparrow_gemm_panel(units, u);
            const float* wp = W + (p * K + kb) * MR;
            __m512 acc[24];
            if (cols > 32) block3(kc, wp, xp, acc);
            else if (cols > 16) block2(kc, wp, xp, acc);
            else block1(kc, wp, xp, acc);
            store_panel(w, p, acc, cols, a->y + j0, ys, a->bias, first, last, lo, hi);
            if (rest > 0 && j0 + NR >= nb)
              rest_panel(w, p, kc, wp, a->x + kb * xs + nb, xs, mask != NULL ? mask + kb : NULL, rest, a->y + nb, ys,
                         a->bias, first, last, a->lo, a->hi);
          }
        }
      }
    }
    return;
  }
  for (size_t j = nb; j < n; j++) {
    for (size_t u = u0; u < u1; u++) {
      const size_t p = sparrow_gemm_panel(units, u);
      float out[8];
      gemv8(K, W + p * K * MR, a->x + j, xs, mask, out);
      const size_t rows = sparrow_gemm_rows(w->m, p, MR);
      for (size_t i = 0; i < rows; i++) {
        const size_t r = p * MR + i;
        const float b = a->bias != NULL ? a->bias[r] : 0.0f;
        a->y[r * ys + j] = sparrow_clampf(out[i] + b, a->lo, a->hi);
      }
    }
  }
}
#endif
