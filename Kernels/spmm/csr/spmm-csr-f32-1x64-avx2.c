/* CSR x dense, AVX2/FMA: one row x 64 columns (8 YMM accumulators) per pass.
 *
 * Loop order: groups of rows, 64-column panels, K blocks, rows. Each K block of the X panel is
 * first copied into an aligned stack buffer: rows of X are far apart (a 4 KiB page each for
 * wide layers, which thrashes the L1 TLB) and often not 32-byte aligned (every other load
 * would split a cache line); the copy makes every load an aligned L1/L2 hit and costs one
 * pass over X per row group. Masked-out K rows are copied as zeros, so the nonzero loop needs
 * no k_mask test: with inactive input channels the driver passes either a compacted matrix
 * (no nonzero in an inactive column) or, when n is too small for the copy to pay, the whole
 * one, whose inactive nonzeros then multiply zeros. A row keeps a cursor into its nonzeros across K blocks (stack array
 * per row group) and its partial sums go through Y between blocks.
 * 64 columns: the per-row costs (loop exit mispredict, bias, clamp, stores) and the per-nonzero
 * index and broadcast are spread over 8 FMAs, and 8 accumulators hide the FMA latency. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "../../pack/formats.h"

#include "../avx2-1x64.h"

#ifndef CSR_BUF
#define CSR_BUF 16384 /* floats of X block buffer: 64 KiB of stack */
#endif
#define CSR_RG 1024   /* rows per group: the cursor array (each group copies the X panel again) */


/* Rows of X per K block. An L1-sized block (16 KiB) makes the FMAs' loads fastest, but each
 * (row, block) pair costs a Y round trip and a loop-exit mispredict; sparse matrices get
 * longer blocks (up to the whole buffer, in L2) so a row still has ~24 nonzeros per block. */
SPARROW_AVX2 size_t kb_limit(const sparrow_matrix* w, const int nv) {
  const size_t lo = (CSR_BUF / 4) / (8 * nv), hi = CSR_BUF / (8 * nv);
  const double want = w->nnz ? 24.0 * (double)w->m * (double)w->k / (double)w->nnz : (double)hi;
  return want < (double)lo ? lo : want > (double)hi ? hi : (size_t)want;
}

/* Copies X rows [k0, k1) of the panel (NV vectors, last one masked when MASKED) into buf,
 * rows NV*8 floats apart; masked-out K rows become zeros (unread). */
SPARROW_AVX2 void pack_block(float* buf, const char* x, size_t xs, size_t k0, size_t k1,
                             const uint8_t* km, const int nv, const int masked, __m256i mask) {
  for (size_t k = k0; k < k1; k++, buf += 8 * nv) {
    const float* xr = (const float*)(x + k * xs);
    /* Rows of X are pages apart: the hardware prefetcher does not follow them. */
    for (int i = 0; i < nv; i += 2) _mm_prefetch((const char*)(xr + 8 * i) + 8 * xs, _MM_HINT_T0);
    if (km != NULL && !km[k]) {
      for (int i = 0; i < nv; i++) _mm256_store_ps(buf + 8 * i, _mm256_setzero_ps());
      continue;
    }
    for (int i = 0; i < nv; i++) _mm256_store_ps(buf + 8 * i, LD(xr, i, nv, masked, mask));
  }
}

/* Weights stream from memory once per panel: with few columns (n = 49 in ResNet-18's last
 * stage) a nonzero costs only a few cycles, more than one core's DRAM bandwidth keeps up with
 * unaided, so every 16 nonzeros the values and indices ~1 KiB ahead are asked for. */
#define CSR_PREFETCH(VAL, COL, P)                                            \
  do {                                                                       \
    _mm_prefetch((const char*)((VAL) + (P)) + 1024, _MM_HINT_T0);            \
    _mm_prefetch((const char*)((COL) + (P)) + 512, _MM_HINT_T0);             \
  } while (0)

/* Rows units[u0..u1) (at most CSR_RG) over one panel of NV vectors at column j. */
#define CSR_PANEL(NAME, IDX_T, COLS, NV, MASKED)                                                   \
  static __attribute__((target("avx2,fma"), noinline)) void NAME(                                  \
      const sparrow_matrix* w, const uint32_t* units, size_t u0, size_t u1,                        \
      const sparrow_ukernel_args* a, size_t j, __m256i mask) {                                     \
    const sparrow_csr* c = &w->u.csr;                                                              \
    const IDX_T* col = c->COLS;                                                                    \
    const float* val = c->values;                                                                  \
    const __m256 lo = _mm256_set1_ps(a->lo), hi = _mm256_set1_ps(a->hi);                           \
    const char* x = (const char*)(a->x + j);                                                       \
    const size_t K = w->k;                                                                         \
    const size_t nblk = (K + kb_limit(w, NV) - 1) / kb_limit(w, NV), kb = (K + nblk - 1) / nblk;   \
    float buf[CSR_BUF + WIN_SPILL] __attribute__((aligned(64)));                                               \
    uint32_t cur[CSR_RG];                                                                          \
    for (size_t u = u0; u < u1; u++) cur[u - u0] = c->row_ptr[units != NULL ? units[u] : u];       \
    const size_t cols = a->n - j < 64 ? a->n - j : 64;                                             \
    win_run runs[WIN_RUNS_MAX];                                                                    \
    const size_t nruns = a->win != NULL ? win_runs(a->win, a->col0 + j, cols, runs) : 0;          \
    for (size_t k0 = 0; k0 < K; k0 += kb) {                                                        \
      const size_t kend = K - k0 > kb ? k0 + kb : K;                                               \
      const int first = k0 == 0, last = kend == K;                                                 \
      if (a->win != NULL)                                                                          \
        pack_window(buf, a->win, a->x, runs, nruns, cols, k0, kend, K, a->k_mask, NV);             \
      else                                                                                         \
        pack_block(buf, x, a->x_stride, k0, kend, a->k_mask, NV, MASKED, mask);                    \
      /* Row k of the block is at xb + k * NV * 32 bytes. */                                       \
      const char* xb = (const char*)buf - k0 * (NV) * 32;                                          \
      for (size_t u = u0; u < u1; u++) {                                                           \
        const size_t r = units != NULL ? units[u] : u;                                             \
        float* yr = (float*)((char*)a->y + r * a->y_stride) + j;                                   \
        const uint32_t p1 = c->row_ptr[r + 1];                                                     \
        uint32_t p = cur[u - u0];                                                                  \
        __m256 a0, a1, a2, a3, a4, a5, a6, a7;                                                     \
        if (first) {                                                                               \
          a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = _mm256_set1_ps(a->bias != NULL ? a->bias[r] : 0.0f); \
        } else {                                                                                   \
          /* A row with nothing in this block keeps its partial sum in Y. */                       \
          if (!last && (p >= p1 || col[p] >= kend)) continue;                                      \
          a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = _mm256_setzero_ps();                             \
          LDY1(a, 0, yr, NV, MASKED, mask); LDY1(a, 1, yr, NV, MASKED, mask);                      \
          LDY1(a, 2, yr, NV, MASKED, mask); LDY1(a, 3, yr, NV, MASKED, mask);                      \
          LDY1(a, 4, yr, NV, MASKED, mask); LDY1(a, 5, yr, NV, MASKED, mask);                      \
          LDY1(a, 6, yr, NV, MASKED, mask); LDY1(a, 7, yr, NV, MASKED, mask);                      \
        }                                                                                          \
        if (last) {                                                                                \
          for (; p < p1; p++) {                                                                    \
            if ((p & 15) == 0) CSR_PREFETCH(val, col, p);                                          \
            const float* x0 = (const float*)(xb + (size_t)col[p] * (NV) * 32);                     \
            const __m256 v0 = _mm256_broadcast_ss(val + p);                                        \
            LOADFMA(a, v0, x0, NV);                                                                \
          }                                                                                        \
        } else {                                                                                   \
          for (; p < p1 && col[p] < kend; p++) {                                                   \
            if ((p & 15) == 0) CSR_PREFETCH(val, col, p);                                          \
            const float* x0 = (const float*)(xb + (size_t)col[p] * (NV) * 32);                     \
            const __m256 v0 = _mm256_broadcast_ss(val + p);                                        \
            LOADFMA(a, v0, x0, NV);                                                                \
          }                                                                                        \
          cur[u - u0] = p;                                                                         \
        }                                                                                          \
        if (last) STORE(yr, a, NV, MASKED, mask, 1, lo, hi);                                       \
        else STORE(yr, a, NV, MASKED, mask, 0, lo, hi);                                            \
      }                                                                                            \
    }                                                                                              \
  }

#define CSR_RUN(SUFFIX, IDX_T, COLS)                                        \
  CSR_PANEL(panel8##SUFFIX, IDX_T, COLS, 8, 0)                              \
  CSR_PANEL(panel8m##SUFFIX, IDX_T, COLS, 8, 1)                             \
  CSR_PANEL(panel7m##SUFFIX, IDX_T, COLS, 7, 1)                             \
  CSR_PANEL(panel6m##SUFFIX, IDX_T, COLS, 6, 1)                             \
  CSR_PANEL(panel5m##SUFFIX, IDX_T, COLS, 5, 1)                             \
  CSR_PANEL(panel4m##SUFFIX, IDX_T, COLS, 4, 1)                             \
  CSR_PANEL(panel3m##SUFFIX, IDX_T, COLS, 3, 1)                             \
  CSR_PANEL(panel2m##SUFFIX, IDX_T, COLS, 2, 1)                             \
  CSR_PANEL(panel1m##SUFFIX, IDX_T, COLS, 1, 1)                             \
  static __attribute__((target("avx2,fma"))) void run##SUFFIX(              \
      const sparrow_matrix* w, const uint32_t* units, size_t u0, size_t u1, \
      const sparrow_ukernel_args* a) {                                      \
    size_t j = 0;                                                           \
    for (; j + 64 <= a->n; j += 64)                                         \
      panel8##SUFFIX(w, units, u0, u1, a, j, _mm256_setzero_si256());       \
    const size_t rem = a->n - j;                                            \
    if (rem == 0) return;                                                   \
    const __m256i mask = tail_mask(rem - (rem - 1) / 8 * 8);                \
    switch ((rem + 7) / 8) {                                                \
      case 1: panel1m##SUFFIX(w, units, u0, u1, a, j, mask); break;         \
      case 2: panel2m##SUFFIX(w, units, u0, u1, a, j, mask); break;         \
      case 3: panel3m##SUFFIX(w, units, u0, u1, a, j, mask); break;         \
      case 4: panel4m##SUFFIX(w, units, u0, u1, a, j, mask); break;         \
      case 5: panel5m##SUFFIX(w, units, u0, u1, a, j, mask); break;         \
      case 6: panel6m##SUFFIX(w, units, u0, u1, a, j, mask); break;         \
      case 7: panel7m##SUFFIX(w, units, u0, u1, a, j, mask); break;         \
      default: panel8m##SUFFIX(w, units, u0, u1, a, j, mask); break;        \
    }                                                                       \
  }

CSR_RUN(16, uint16_t, col16)
CSR_RUN(32, uint32_t, col32)

void sparrow_spmm_csr_f32_1x64__avx2(const sparrow_matrix* w, const uint32_t* units, size_t u0,
                                     size_t u1, const sparrow_ukernel_args* a) {
  for (size_t g0 = u0; g0 < u1; g0 += CSR_RG) {
    const size_t g1 = u1 - g0 > CSR_RG ? g0 + CSR_RG : u1;
    if (w->u.csr.col16 != NULL) run16(w, units, g0, g1, a);
    else run32(w, units, g0, g1, a);
  }
}
#endif
