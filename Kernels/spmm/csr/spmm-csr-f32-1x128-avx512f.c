/* CSR x dense, AVX-512F: one row x up to 128 columns (8 zmm accumulators) per pass.
 *
 * The AVX2 1x64 kernel's plan with 16-lane vectors: per panel, K blocks of X are copied into
 * an aligned stack buffer (rows of X are pages apart and often misaligned; masked-out and
 * past-K rows become zeros), then every row of the tile runs its nonzeros of that block with
 * a cursor kept per row across blocks; partial sums go through Y between blocks. Per nonzero:
 * one index, one broadcast and up to 8 FMAs of 16 lanes (8 independent chains cover the FMA
 * latency at two FMAs a cycle), twice the columns of the AVX2 kernel for the same per-nonzero
 * cost. Panels split n evenly (z_panel_width); the last vector of a panel is masked. With an
 * image window (sparrow_ukernel_args.win) the panel is built from the image (im2col on the
 * fly, the AVX2 helper). */
#if defined(__x86_64__)
#include <immintrin.h>

#include "../../pack/formats.h"

#include "../avx512-1x128.h"

#define CSR_BUF 16384 /* floats of X block buffer: 64 KiB of stack */
#define CSR_RG 1024   /* rows per group: the cursor array */

/* Rows of X per K block: at least a quarter of the buffer, more for sparser matrices so a row
 * still has ~24 nonzeros per block (each (row, block) pair costs a Y round trip and a loop
 * exit). */
static inline size_t z_kb_limit(const sparrow_matrix* w, const int nv) {
  const size_t lo = (CSR_BUF / 4) / (16 * nv), hi = CSR_BUF / (16 * nv);
  const double want = w->nnz ? 24.0 * (double)w->m * (double)w->k / (double)w->nnz : (double)hi;
  return want < (double)lo ? lo : want > (double)hi ? hi : (size_t)want;
}

#define CSR_PREFETCH(VAL, COL, P)                                 \
  do {                                                            \
    _mm_prefetch((const char*)((VAL) + (P)) + 1024, _MM_HINT_T0); \
    _mm_prefetch((const char*)((COL) + (P)) + 512, _MM_HINT_T0);  \
  } while (0)

/* Rows units[u0..u1) (at most CSR_RG) over one panel of NV vectors at column j. */
#define CSR_PANEL(NAME, IDX_T, COLS, NV)                                                                     \
  SPARROW_AVX512_FN void NAME(const sparrow_matrix* w, const uint32_t* units, size_t u0, size_t u1,          \
                              const sparrow_ukernel_args* a, size_t j, size_t cols) {                        \
    const sparrow_csr* c = &w->u.csr;                                                                        \
    const IDX_T* col = c->COLS;                                                                              \
    const float* val = c->values;                                                                            \
    const __m512 lo = _mm512_set1_ps(a->lo), hi = _mm512_set1_ps(a->hi);                                    \
    const __mmask16 tail = z_tail(cols, NV);                                                                 \
    const char* x = (const char*)(a->x + j);                                                                 \
    const size_t K = w->k;                                                                                   \
    const size_t nblk = (K + z_kb_limit(w, NV) - 1) / z_kb_limit(w, NV), kb = (K + nblk - 1) / nblk;        \
    float buf[CSR_BUF + WIN_SPILL] __attribute__((aligned(64)));                                             \
    uint32_t cur[CSR_RG];                                                                                    \
    for (size_t u = u0; u < u1; u++) cur[u - u0] = c->row_ptr[units != NULL ? units[u] : u];                 \
    win_run runs[WIN_RUNS_MAX512];                                                                           \
    const size_t nruns = a->win != NULL ? win_runs(a->win, a->col0 + j, cols, runs) : 0;                    \
    for (size_t k0 = 0; k0 < K; k0 += kb) {                                                                  \
      const size_t kend = K - k0 > kb ? k0 + kb : K;                                                         \
      const int first = k0 == 0, last = kend == K;                                                           \
      if (a->win != NULL)                                                                                    \
        pack_window(buf, a->win, a->x, runs, nruns, cols, k0, kend, K, a->k_mask, 2 * (NV));                 \
      else                                                                                                   \
        z_pack_block(buf, x, a->x_stride, k0, kend, K, a->k_mask, NV, tail);                                 \
      /* Row k of the block is at xb + k * NV * 64 bytes. */                                                 \
      const char* xb = (const char*)buf - k0 * (NV) * 64;                                                    \
      for (size_t u = u0; u < u1; u++) {                                                                     \
        const size_t r = units != NULL ? units[u] : u;                                                       \
        float* yr = (float*)((char*)a->y + r * a->y_stride) + j;                                             \
        const uint32_t p1 = c->row_ptr[r + 1];                                                               \
        uint32_t p = cur[u - u0];                                                                            \
        __m512 a0, a1, a2, a3, a4, a5, a6, a7;                                                               \
        if (first) {                                                                                         \
          a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = _mm512_set1_ps(a->bias != NULL ? a->bias[r] : 0.0f);      \
        } else {                                                                                             \
          /* A row with nothing in this block keeps its partial sum in Y. */                                 \
          if (!last && (p >= p1 || col[p] >= kend)) continue;                                                \
          a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = _mm512_setzero_ps();                                       \
          ZLOADY(a, yr, NV, tail);                                                                           \
        }                                                                                                    \
        if (last) {                                                                                          \
          for (; p < p1; p++) {                                                                              \
            if ((p & 15) == 0) CSR_PREFETCH(val, col, p);                                                    \
            const float* x0 = (const float*)(xb + (size_t)col[p] * (NV) * 64);                               \
            const __m512 v0 = _mm512_set1_ps(val[p]);                                                        \
            ZLOADFMA(a, v0, x0, NV);                                                                         \
          }                                                                                                  \
          ZSTORE(yr, a, NV, tail, 1, lo, hi);                                                                \
        } else {                                                                                             \
          for (; p < p1 && col[p] < kend; p++) {                                                             \
            if ((p & 15) == 0) CSR_PREFETCH(val, col, p);                                                    \
            const float* x0 = (const float*)(xb + (size_t)col[p] * (NV) * 64);                               \
            const __m512 v0 = _mm512_set1_ps(val[p]);                                                        \
            ZLOADFMA(a, v0, x0, NV);                                                                         \
          }                                                                                                  \
          cur[u - u0] = p;                                                                                   \
          ZSTORE(yr, a, NV, tail, 0, lo, hi);                                                                \
        }                                                                                                    \
      }                                                                                                      \
    }                                                                                                        \
  }

#define CSR_PANELS(SUFFIX, IDX_T, COLS)      \
  CSR_PANEL(panel1##SUFFIX, IDX_T, COLS, 1) \
  CSR_PANEL(panel2##SUFFIX, IDX_T, COLS, 2) \
  CSR_PANEL(panel3##SUFFIX, IDX_T, COLS, 3) \
  CSR_PANEL(panel4##SUFFIX, IDX_T, COLS, 4) \
  CSR_PANEL(panel5##SUFFIX, IDX_T, COLS, 5) \
  CSR_PANEL(panel6##SUFFIX, IDX_T, COLS, 6) \
  CSR_PANEL(panel7##SUFFIX, IDX_T, COLS, 7) \
  CSR_PANEL(panel8##SUFFIX, IDX_T, COLS, 8)

CSR_PANELS(_16, uint16_t, col16)
CSR_PANELS(_32, uint32_t, col32)

#define CALL16(NV) panel##NV##_16(w, units, g0, g1, a, j, cols)
#define CALL32(NV) panel##NV##_32(w, units, g0, g1, a, j, cols)

__attribute__((target("avx512f,avx2,fma"))) void sparrow_spmm_csr_f32_1x128__avx512f(
    const sparrow_matrix* w, const uint32_t* units, size_t u0, size_t u1, const sparrow_ukernel_args* a) {
  for (size_t g0 = u0; g0 < u1; g0 += CSR_RG) {
    const size_t g1 = u1 - g0 > CSR_RG ? g0 + CSR_RG : u1;
    if (w->u.csr.col16 != NULL) Z_FOR_PANELS(a->n, CALL16);
    else Z_FOR_PANELS(a->n, CALL32);
  }
}
#endif
