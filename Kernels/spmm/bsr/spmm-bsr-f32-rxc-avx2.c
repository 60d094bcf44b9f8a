/* BSR x dense, AVX2/FMA, any block shape r x c. The rows of a block row are register-blocked
 * in chunks (r >= 3: 4 rows x 16 columns; r = 2: 2 x 32; r = 1: 1 x 64 — 8 YMM accumulators
 * each), so every X vector loaded serves all rows of the chunk; c = 1 and c = 4 get their
 * own instances of the block loop.
 *
 * Like the CSR kernel, each K block of a 64-column X panel is first copied into an aligned
 * stack buffer (rows of X are pages apart and often misaligned; masked-out K rows and rows
 * past K become zeros, so edge blocks run their full c columns with no k_mask test), and a
 * block row keeps a cursor into its blocks across K blocks, partial sums going through Y.
 * Rows past M (edge block rows) are neither computed nor written. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "../../pack/formats.h"

#define SPARROW_AVX2 __attribute__((target("avx2,fma"), always_inline)) static inline

#define BSR_BUF 8192 /* floats of X block buffer (32 KiB of stack): 128 rows of 64 columns */
#define BSR_RG 256   /* block rows per group: the cursor array */
#define ROWB 256     /* bytes per buffered X row */

SPARROW_AVX2 __m256i tail_mask(size_t rem) {
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)rem), lanes);
}

/* Copies X rows [k0, k1) of the 64-column panel into buf; masked-out rows, rows at or past K
 * and lanes past the tile become zeros. MASKED: the tile ends inside this panel. */
#define BSR_PACK(NAME, MASKED)                                                                    \
  SPARROW_AVX2 void NAME(float* buf, const char* x, size_t xs, size_t k0, size_t k1, size_t K,    \
                         const uint8_t* km, size_t ncols, __m256i mask) {                         \
    const size_t full = (MASKED) ? ncols / 8 : 8;                                                 \
    for (size_t k = k0; k < k1; k++, buf += 64) {                                                 \
      const float* xr = (const float*)(x + k * xs);                                               \
      if (k >= K || (km != NULL && !km[k])) {                                                     \
        for (int i = 0; i < 8; i++) _mm256_store_ps(buf + 8 * i, _mm256_setzero_ps());            \
        continue;                                                                                 \
      }                                                                                           \
      if (k + 8 < K) { /* rows of X are pages apart: the hardware prefetcher does not follow */   \
        _mm_prefetch((const char*)xr + 8 * xs, _MM_HINT_T0);                                      \
        _mm_prefetch((const char*)xr + 8 * xs + 64, _MM_HINT_T0);                                 \
        if (!(MASKED)) {                                                                          \
          _mm_prefetch((const char*)xr + 8 * xs + 128, _MM_HINT_T0);                              \
          _mm_prefetch((const char*)xr + 8 * xs + 192, _MM_HINT_T0);                              \
        }                                                                                         \
      }                                                                                           \
      size_t i = 0;                                                                               \
      for (; i < full; i++) _mm256_store_ps(buf + 8 * i, _mm256_loadu_ps(xr + 8 * i));            \
      if (MASKED) {                                                                               \
        if (ncols % 8) _mm256_store_ps(buf + 8 * i, _mm256_maskload_ps(xr + 8 * i, mask)), i++;   \
        for (; i < 8; i++) _mm256_store_ps(buf + 8 * i, _mm256_setzero_ps());                     \
      }                                                                                           \
    }                                                                                             \
  }
BSR_PACK(pack_full, 0)
BSR_PACK(pack_tail, 1)

/* RB rows (i0.. of block row br) x NV vectors (buffer columns from vector v0) over the blocks
 * from *cur with K offset < kend. nvalid vectors hold tile columns; the last of them is partial
 * when `partial`. CC: the block width when known at compile time, else 0. */
SPARROW_AVX2 void chunk(const sparrow_bsr* b, size_t br, size_t i0, const int RB, const int NV,
                        const int CC, int v0, uint32_t* cur, size_t kend, const char* xb,
                        const sparrow_ukernel_args* a, size_t j, int nvalid, int partial,
                        __m256i mask, int first, int last) {
  const size_t R = b->r, C = CC ? (size_t)CC : b->c;
  const uint32_t bend = b->block_row_ptr[br + 1];
  uint32_t p = *cur;
  __m256 acc[4][8];
  float* yr[4];
  for (int i = 0; i < RB; i++) {
    const size_t row = br * R + i0 + i;
    yr[i] = (float*)((char*)a->y + row * a->y_stride) + j;
    if (first) {
      const __m256 bias = _mm256_set1_ps(a->bias != NULL ? a->bias[row] : 0.0f);
      for (int v = 0; v < NV; v++) acc[i][v] = bias;
    } else {
      for (int v = 0; v < NV; v++)
        acc[i][v] = v >= nvalid ? _mm256_setzero_ps()
                    : partial && v == nvalid - 1 ? _mm256_maskload_ps(yr[i] + 8 * v, mask)
                                                 : _mm256_loadu_ps(yr[i] + 8 * v);
    }
  }
  xb += v0 * 32;
  for (; p < bend && (size_t)b->block_col[p] * C < kend; p++) {
    const float* wv = b->values + (size_t)p * R * C + i0 * C;
    const char* xq = xb + (size_t)b->block_col[p] * C * ROWB;
    for (size_t q = 0; q < C; q++, xq += ROWB) {
      __m256 xv[8];
      for (int v = 0; v < NV; v++) xv[v] = _mm256_load_ps((const float*)xq + 8 * v);
      for (int i = 0; i < RB; i++) {
        const __m256 wb = _mm256_broadcast_ss(wv + i * C + q);
        for (int v = 0; v < NV; v++) acc[i][v] = _mm256_fmadd_ps(wb, xv[v], acc[i][v]);
      }
    }
  }
  const __m256 lo = _mm256_set1_ps(a->lo), hi = _mm256_set1_ps(a->hi);
  for (int i = 0; i < RB; i++)
    for (int v = 0; v < NV && v < nvalid; v++) {
      const __m256 o = last ? _mm256_min_ps(_mm256_max_ps(acc[i][v], lo), hi) : acc[i][v];
      if (partial && v == nvalid - 1) _mm256_maskstore_ps(yr[i] + 8 * v, mask, o);
      else _mm256_storeu_ps(yr[i] + 8 * v, o);
    }
  *cur = p;
}

/* One chunk of rb <= RBMAX rows over every NV-vector slice of the panel. */
#define BSR_CHUNKS(RB, NV, CC)                                                                   \
  for (int v0 = 0; v0 < 8 && v0 * 8 < (int)ncols; v0 += (NV)) {                                  \
    const int cols = (int)ncols - v0 * 8 < (NV) * 8 ? (int)ncols - v0 * 8 : (NV) * 8;            \
    c = p;                                                                                       \
    chunk(b, br, i0, RB, NV, CC, v0, &c, kend, xb, a, j + v0 * 8, (cols + 7) / 8, cols % 8 != 0, \
          mask, first, last);                                                                    \
  }

/* Block rows units[u0..u1) (at most BSR_RG) over the panel at column j (ncols <= 64 columns),
 * register tiles of RBMAX rows x NV vectors. */
#define BSR_PANEL(NAME, RBMAX, NV)                                                                 \
  static __attribute__((target("avx2,fma"), noinline)) void NAME(                                  \
      const sparrow_matrix* w, const uint32_t* units, size_t u0, size_t u1,                        \
      const sparrow_ukernel_args* a, size_t j, size_t ncols, __m256i mask) {                       \
    const sparrow_bsr* b = &w->u.bsr;                                                              \
    const size_t R = b->r, C = b->c, K = w->k, M = w->m;                                           \
    const size_t kpad = (K + C - 1) / C * C;                                                       \
    size_t kb = BSR_BUF / 64 / C * C;                                                              \
    const size_t nblk = (kpad + kb - 1) / kb;                                                      \
    kb = ((kpad + nblk - 1) / nblk + C - 1) / C * C;                                               \
    float buf[BSR_BUF] __attribute__((aligned(64)));                                               \
    uint32_t cur[BSR_RG];                                                                          \
    for (size_t u = u0; u < u1; u++) cur[u - u0] = b->block_row_ptr[units != NULL ? units[u] : u]; \
    for (size_t k0 = 0; k0 < kpad; k0 += kb) {                                                     \
      const size_t kend = kpad - k0 > kb ? k0 + kb : kpad;                                         \
      const int first = k0 == 0, last = kend == kpad;                                              \
      if (ncols == 64) pack_full(buf, (const char*)(a->x + j), a->x_stride, k0, kend, K, a->k_mask, ncols, mask); \
      else pack_tail(buf, (const char*)(a->x + j), a->x_stride, k0, kend, K, a->k_mask, ncols, mask); \
      const char* xb = (const char*)buf - k0 * ROWB;                                               \
      for (size_t u = u0; u < u1; u++) {                                                           \
        const size_t br = units != NULL ? units[u] : u;                                            \
        const size_t rows = M - br * R < R ? M - br * R : R;                                       \
        const uint32_t p = cur[u - u0];                                                            \
        /* A block row with nothing in this block keeps its partial sums in Y. */                  \
        if (!first && !last &&                                                                     \
            (p >= b->block_row_ptr[br + 1] || (size_t)b->block_col[p] * C >= kend)) continue;      \
        uint32_t c = p;                                                                            \
        for (size_t i0 = 0; i0 < rows; i0 += (RBMAX)) {                                           \
          const size_t rb = rows - i0 >= (RBMAX) ? (RBMAX) : rows - i0;                            \
          if (rb == (RBMAX) && C == 1) { BSR_CHUNKS(RBMAX, NV, 1) }                                \
          else if (rb == (RBMAX) && C == 4) { BSR_CHUNKS(RBMAX, NV, 4) }                           \
          else if (rb == (RBMAX)) { BSR_CHUNKS(RBMAX, NV, 0) }                                     \
          else if (rb == 1) { BSR_CHUNKS(1, NV, 0) }                                               \
          else if (rb == 2) { BSR_CHUNKS(2 <= (RBMAX) ? 2 : 1, NV, 0) }                            \
          else { BSR_CHUNKS(3 <= (RBMAX) ? 3 : 1, NV, 0) }                                         \
        }                                                                                          \
        cur[u - u0] = c;                                                                           \
      }                                                                                            \
    }                                                                                              \
  }

BSR_PANEL(panel_r4, 4, 2)
BSR_PANEL(panel_r2, 2, 4)
BSR_PANEL(panel_r1, 1, 8)

__attribute__((target("avx2,fma"))) void sparrow_spmm_bsr_f32_rxc__avx2(
    const sparrow_matrix* w, const uint32_t* units, size_t u0, size_t u1, const sparrow_ukernel_args* a) {
  const size_t R = w->u.bsr.r;
  for (size_t g0 = u0; g0 < u1; g0 += BSR_RG) {
    const size_t g1 = u1 - g0 > BSR_RG ? g0 + BSR_RG : u1;
    for (size_t j = 0; j < a->n; j += 64) {
      const size_t ncols = a->n - j < 64 ? a->n - j : 64;
      const __m256i mask = tail_mask(ncols % 8 ? ncols % 8 : 8);
      if (R >= 3) panel_r4(w, units, g0, g1, a, j, ncols, mask);
      else if (R == 2) panel_r2(w, units, g0, g1, a, j, ncols, mask);
      else panel_r1(w, units, g0, g1, a, j, ncols, mask);
    }
  }
}
#endif
