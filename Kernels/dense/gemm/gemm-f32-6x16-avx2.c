/* Packed dense GEMM, AVX2/FMA, 6 x 16 register block (layout: gemm.h): per k, two 8-float
 * loads of the X row, six broadcasts of the panel's W column, twelve FMAs. An 8-column rest
 * runs 6 x 8; the last < 8 columns (all of N = 1) run the matrix-vector path, which streams the
 * panel once with one 8-lane FMA per k (lanes 6 and 7 hold the next k's rows and are dropped). */
#if defined(__x86_64__)
#include <immintrin.h>

#include "gemm.h"
#include "../../spmm/avx2-1x64.h"

#define T __attribute__((target("avx2,fma")))
#define MR 6

static inline T __m256 clamp8(__m256 v, float b, __m256 lo, __m256 hi) {
  return _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(v, _mm256_set1_ps(b)), lo), hi);
}

/* The FMA block for NV vectors (1 or 2) of 8 columns; acc[i * 2 + v]. */
#define BLOCK(NV)                                                                                  \
  static inline T void block##NV(size_t K, const float* wp, const float* x, size_t xs,             \
                                 const uint8_t* mask, __m256 c[12]) {                              \
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;       \
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;                       \
    for (size_t k = 0; k < K; k++) {                                                               \
      if (mask != NULL && !mask[k]) continue;                                                      \
      const float* xr = x + k * xs;                                                                \
      const float* wk = wp + k * MR;                                                               \
      const __m256 x0 = _mm256_loadu_ps(xr);                                                       \
      const __m256 x1 = NV == 2 ? _mm256_loadu_ps(xr + 8) : x0;                                    \
      __m256 b = _mm256_broadcast_ss(wk + 0);                                                      \
      c00 = _mm256_fmadd_ps(b, x0, c00);                                                           \
      if (NV == 2) c01 = _mm256_fmadd_ps(b, x1, c01);                                              \
      b = _mm256_broadcast_ss(wk + 1);                                                             \
      c10 = _mm256_fmadd_ps(b, x0, c10);                                                           \
      if (NV == 2) c11 = _mm256_fmadd_ps(b, x1, c11);                                              \
      b = _mm256_broadcast_ss(wk + 2);                                                             \
      c20 = _mm256_fmadd_ps(b, x0, c20);                                                           \
      if (NV == 2) c21 = _mm256_fmadd_ps(b, x1, c21);                                              \
      b = _mm256_broadcast_ss(wk + 3);                                                             \
      c30 = _mm256_fmadd_ps(b, x0, c30);                                                           \
      if (NV == 2) c31 = _mm256_fmadd_ps(b, x1, c31);                                              \
      b = _mm256_broadcast_ss(wk + 4);                                                             \
      c40 = _mm256_fmadd_ps(b, x0, c40);                                                           \
      if (NV == 2) c41 = _mm256_fmadd_ps(b, x1, c41);                                              \
      b = _mm256_broadcast_ss(wk + 5);                                                             \
      c50 = _mm256_fmadd_ps(b, x0, c50);                                                           \
      if (NV == 2) c51 = _mm256_fmadd_ps(b, x1, c51);                                              \
    }                                                                                              \
    c[0] = c00, c[1] = c01, c[2] = c10, c[3] = c11, c[4] = c20, c[5] = c21;                        \
    c[6] = c30, c[7] = c31, c[8] = c40, c[9] = c41, c[10] = c50, c[11] = c51;                      \
  }
BLOCK(1)
BLOCK(2)

/* One column j of the panel: y[0..6) = W_panel . x[:, j]. */
static inline T void gemv6(size_t K, const float* wp, const float* x, size_t xs, const uint8_t* mask, float out[8]) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  size_t k = 0;
  if (mask == NULL) {
    for (; k + 4 <= K; k += 4) {
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(wp + k * MR), _mm256_broadcast_ss(x + k * xs), a0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(wp + (k + 1) * MR), _mm256_broadcast_ss(x + (k + 1) * xs), a1);
      a2 = _mm256_fmadd_ps(_mm256_loadu_ps(wp + (k + 2) * MR), _mm256_broadcast_ss(x + (k + 2) * xs), a2);
      a3 = _mm256_fmadd_ps(_mm256_loadu_ps(wp + (k + 3) * MR), _mm256_broadcast_ss(x + (k + 3) * xs), a3);
    }
  }
  for (; k < K; k++) {
    if (mask != NULL && !mask[k]) continue;
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(wp + k * MR), _mm256_broadcast_ss(x + k * xs), a0);
  }
  _mm256_storeu_ps(out, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}

/* X rows of one 16-column block, KC at a time, copied into a contiguous panel (as MLAS and
 * XNNPACK pack B): read in place, each k of the inner loop touches another row of X, N * 4 bytes
 * apart (another page on wide layers), for every panel; packed, once per block and K-slice.
 * Measured (Xeon, AVX2, OpenBLAS Haswell kernels as the baseline): conv1 64x12544x147 0.48x in
 * place. Partial sums go through Y between K-slices; the epilogue runs on the last. */
#define KC 256
/* 160 panels x 6 rows x 256 k x 4 bytes = 960 KiB of W per slice and group (L2: 1-2 MiB). */
#define MC_PANELS 160

static inline T void pack16(size_t kc, const float* x, size_t xs, const uint8_t* mask, float* xp) {
  for (size_t k = 0; k < kc; k++) {
    /* An inactive row is never read: zeros instead (W is finite, so 0 * w adds nothing). */
    const int off = mask != NULL && !mask[k];
    const __m256 a = off ? _mm256_setzero_ps() : _mm256_loadu_ps(x + k * xs);
    const __m256 b = off ? _mm256_setzero_ps() : _mm256_loadu_ps(x + k * xs + 8);
    _mm256_store_ps(xp + k * 16, a);
    _mm256_store_ps(xp + k * 16 + 8, b);
  }
}

/* ---- X as an image window (gemm.h). The shared driver (window.c) builds 16-column panels with
 * plain C, a few calls per 16-float row: on ResNet-18's convolutions that cost more than the
 * FMAs (a 6-row panel group does ~4 cycles of FMAs per X float at M = 64) and put the kernel
 * 20-40% behind im2col + OpenBLAS. Here the panel is 64 columns wide and built with the AVX2
 * window packer the CSR and N:M kernels use (spmm/avx2-1x64.h: runs of output rows copied in
 * vectors, rows 64 floats apart), then multiplied in 16-column blocks, each block's K-slice
 * (16 KiB) staying in L1 while the group's panels stream past. */
#define WNB 64

/* A 6 x 16 block from the panel (rows ld floats apart), the last columns masked. */
static inline T void window_block(size_t kc, const float* wp, const float* xp, size_t ld, size_t cols, float* y,
                                  size_t ys, size_t rows, const float* bias, __m256 vlo, __m256 vhi, int first,
                                  int last) {
  __m256 c[12];
  if (cols > 8) block2(kc, wp, xp, ld, NULL, c);
  else block1(kc, wp, xp, ld, NULL, c);
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(cols < 8 ? cols : 8)), lanes);
  const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(cols > 8 ? cols - 8 : 0)), lanes);
  for (size_t i = 0; i < rows; i++) {
    float* yr = y + i * ys;
    __m256 v0 = c[i * 2], v1 = c[i * 2 + 1];
    if (!first) {
      v0 = _mm256_add_ps(v0, _mm256_maskload_ps(yr, m0));
      if (cols > 8) v1 = _mm256_add_ps(v1, _mm256_maskload_ps(yr + 8, m1));
    }
    if (last) {
      const float b = bias != NULL ? bias[i] : 0.0f;
      v0 = clamp8(v0, b, vlo, vhi), v1 = clamp8(v1, b, vlo, vhi);
    }
    if (cols >= 16) {
      _mm256_storeu_ps(yr, v0);
      _mm256_storeu_ps(yr + 8, v1);
    } else {
      _mm256_maskstore_ps(yr, m0, v0);
      if (cols > 8) _mm256_maskstore_ps(yr + 8, m1, v1);
    }
  }
}

static T void window6x16(const sparrow_matrix* w, const uint32_t* units, size_t u0, size_t u1,
                         const sparrow_ukernel_args* a) {
  const size_t K = w->k, n = a->n, ys = a->y_stride / sizeof(float);
  const size_t slices = sparrow_div_up(K, KC), kcs = sparrow_div_up(K, slices);
  const __m256 vlo = _mm256_set1_ps(a->lo), vhi = _mm256_set1_ps(a->hi);
  float xp[KC * WNB + WIN_SPILL] __attribute__((aligned(64)));
  win_run runs[WIN_RUNS_MAX];
  for (size_t kb = 0; kb < K; kb += kcs) {
    const size_t kc = K - kb < kcs ? K - kb : kcs;
    const int first = kb == 0, last = kb + kc == K;
    for (size_t g0 = u0; g0 < u1; g0 += MC_PANELS) {
      const size_t g1 = u1 - g0 < MC_PANELS ? u1 : g0 + MC_PANELS;
      for (size_t j0 = 0; j0 < n; j0 += WNB) {
        const size_t cols = n - j0 < WNB ? n - j0 : WNB;
        const size_t nruns = win_runs(a->win, a->col0 + j0, cols, runs);
        pack_window(xp, a->win, a->x, runs, nruns, cols, kb, kb + kc, K, a->k_mask, WNB / 8);
        for (size_t c0 = 0; c0 < cols; c0 += 16) {
          const size_t cc = cols - c0 < 16 ? cols - c0 : 16;
          for (size_t u = g0; u < g1; u++) {
            const size_t p = sparrow_gemm_panel(units, u);
            window_block(kc, w->u.gemm.w + (p * K + kb) * MR, xp + c0, WNB, cc, a->y + p * MR * ys + j0 + c0, ys,
                         sparrow_gemm_rows(w->m, p, MR), a->bias != NULL ? a->bias + p * MR : NULL, vlo, vhi, first,
                         last);
          }
        }
      }
    }
  }
}

T void sparrow_gemm_f32_6x16__avx2(const sparrow_matrix* w, const uint32_t* units, size_t u0, size_t u1,
                                   const sparrow_ukernel_args* a) {
  const size_t K = w->k, n = a->n, xs = a->x_stride / sizeof(float), ys = a->y_stride / sizeof(float);
  const uint8_t* mask = a->k_mask;
  if (a->win != NULL) {
    window6x16(w, units, u0, u1, a);
    return;
  }
  const __m256 lo = _mm256_set1_ps(a->lo), hi = _mm256_set1_ps(a->hi);
  size_t j0 = 0;
  /* Packing X pays when at least two panels reuse it. */
  if (u1 - u0 >= 2) {
    float xp[KC * 16] __attribute__((aligned(32)));
    const size_t nb = n / 16 * 16;
    /* K slices outside, then groups of panels whose W slices (6 x KC floats each) fit in L2,
     * then the column blocks: a group's W is read from memory once per slice, not once per
     * 16 columns (what a cold weight costs inside a model). */
    for (size_t kb = 0; kb < K && nb > 0; kb += KC) {
      const size_t kc = K - kb < KC ? K - kb : KC;
      const int first = kb == 0, last = kb + kc == K;
      for (size_t g0 = u0; g0 < u1; g0 += MC_PANELS) {
        const size_t g1 = u1 - g0 < MC_PANELS ? u1 : g0 + MC_PANELS;
        for (size_t jb = 0; jb < nb; jb += 16) {
          pack16(kc, a->x + kb * xs + jb, xs, mask != NULL ? mask + kb : NULL, xp);
          for (size_t u = g0; u < g1; u++) {
            const size_t p = sparrow_gemm_panel(units, u);
            __m256 c[12];
            block2(kc, w->u.gemm.w + (p * K + kb) * MR, xp, 16, NULL, c);
            const size_t rows = sparrow_gemm_rows(w->m, p, MR);
            for (size_t i = 0; i < rows; i++) {
              const size_t r = p * MR + i;
              float* y = a->y + r * ys + jb;
              __m256 v0 = c[i * 2], v1 = c[i * 2 + 1];
              if (!first) v0 = _mm256_add_ps(v0, _mm256_loadu_ps(y)), v1 = _mm256_add_ps(v1, _mm256_loadu_ps(y + 8));
              if (last) {
                const float b = a->bias != NULL ? a->bias[r] : 0.0f;
                v0 = clamp8(v0, b, lo, hi), v1 = clamp8(v1, b, lo, hi);
              }
              _mm256_storeu_ps(y, v0);
              _mm256_storeu_ps(y + 8, v1);
            }
          }
        }
      }
    }
    j0 = nb;
  }
  /* Column blocks outside, panels inside: the block's X rows (K x 16 floats) stay in cache
   * while the tile's panels stream past. */
  while (j0 + 8 <= n) {
    const int nv = j0 + 16 <= n ? 2 : 1;
    for (size_t u = u0; u < u1; u++) {
      const size_t p = sparrow_gemm_panel(units, u);
      const float* wp = w->u.gemm.w + p * K * MR;
      __m256 c[12];
      if (nv == 2) block2(K, wp, a->x + j0, xs, mask, c);
      else block1(K, wp, a->x + j0, xs, mask, c);
      const size_t rows = sparrow_gemm_rows(w->m, p, MR);
      for (size_t i = 0; i < rows; i++) {
        const size_t r = p * MR + i;
        const float b = a->bias != NULL ? a->bias[r] : 0.0f;
        float* y = a->y + r * ys + j0;
        _mm256_storeu_ps(y, clamp8(c[i * 2], b, lo, hi));
        if (nv == 2) _mm256_storeu_ps(y + 8, clamp8(c[i * 2 + 1], b, lo, hi));
      }
    }
    j0 += (size_t)nv * 8;
  }
  for (; j0 < n; j0++) {
    for (size_t u = u0; u < u1; u++) {
      const size_t p = sparrow_gemm_panel(units, u);
      float out[8];
      gemv6(K, w->u.gemm.w + p * K * MR, a->x + j0, xs, mask, out);
      const size_t rows = sparrow_gemm_rows(w->m, p, MR);
      for (size_t i = 0; i < rows; i++) {
        const size_t r = p * MR + i;
        const float b = a->bias != NULL ? a->bias[r] : 0.0f;
        a->y[r * ys + j0] = sparrow_clampf(out[i] + b, a->lo, a->hi);
      }
    }
  }
}
#endif
