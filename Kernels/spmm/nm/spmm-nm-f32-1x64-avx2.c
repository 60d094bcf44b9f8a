/* N:M x dense, AVX2/FMA: one row x 64 columns (8 YMM accumulators) per pass.
 *
 * Same plan as the CSR 1x64 kernel: per 64-column panel, K blocks of X are copied into an
 * aligned stack buffer (rows of X are pages apart and often misaligned; masked-out K rows
 * and rows past K become zeros), then every row of the tile runs its pairs of that block.
 * A block is a whole number of group spans (m columns, or m*S for group_stride S), so the
 * groups of a block are a contiguous range and no cursors are needed. Padding pairs (value
 * 0) are computed like the others: they point at a buffer row that is finite or zero.
 * Blocks whose group span does not fit the buffer (m*S*256 bytes > 64 KiB) use the scalar
 * kernel (the dispatcher does not choose this one for them). */
#if defined(__x86_64__)
#include <immintrin.h>

#include "../../pack/formats.h"
#include "nm-prefetch.h"

#include "../avx2-1x64.h"

#define NM_BUF SPARROW_NM_AVX2_BUF /* floats of X block buffer: 64 KiB of stack */
#define NM_L1ROWS 4096 /* floats: aim for a 16 KiB block so the FMAs' loads hit L1 */


/* Copies X rows [k0, k1) of the panel into buf (rows nv*8 floats apart); masked-out rows and
 * rows at or past K become zeros. */
SPARROW_AVX2 void pack_block(float* buf, const char* x, size_t xs, size_t k0, size_t k1, size_t K,
                             const uint8_t* km, const int nv, const int masked, __m256i mask) {
  for (size_t k = k0; k < k1; k++, buf += 8 * nv) {
    const float* xr = (const float*)(x + k * xs);
    if (k + 8 < K)  /* rows of X are pages apart: the hardware prefetcher does not follow them */
      for (int i = 0; i < nv; i += 2) _mm_prefetch((const char*)(xr + 8 * i) + 8 * xs, _MM_HINT_T0);
    if (k >= K || (km != NULL && !km[k])) {
      for (int i = 0; i < nv; i++) _mm256_store_ps(buf + 8 * i, _mm256_setzero_ps());
      continue;
    }
    for (int i = 0; i < nv; i++) _mm256_store_ps(buf + 8 * i, LD(xr, i, nv, masked, mask));
  }
}

#define NM_PANEL(NAME, NV, MASKED)                                                                 \
  static __attribute__((target("avx2,fma"), noinline)) void NAME(                                  \
      const sparrow_matrix* w, const uint32_t* units, size_t u0, size_t u1,                        \
      const sparrow_ukernel_args* a, size_t j, __m256i mask) {                                     \
    const sparrow_nm* s = &w->u.nm;                                                                \
    const size_t S = s->stride, GM = s->m, GN = s->n, G = s->groups, K = w->k;                     \
    const size_t span = GM * S; /* K rows covered by S consecutive groups */                       \
    const size_t rowb = (NV) * 32;                                                                 \
    size_t spans = (NM_L1ROWS / (8 * (NV))) / span;                                                \
    if (spans == 0) spans = 1;                                                                     \
    const size_t total_spans = (K + span - 1) / span;                                              \
    const size_t nblk = (total_spans + spans - 1) / spans;                                         \
    spans = (total_spans + nblk - 1) / nblk;                                                       \
    const __m256 lo = _mm256_set1_ps(a->lo), hi = _mm256_set1_ps(a->hi);                           \
    const char* x = (const char*)(a->x + j);                                                       \
    float buf[NM_BUF + WIN_SPILL] __attribute__((aligned(64)));                                                \
    const size_t cols = a->n - j < 64 ? a->n - j : 64;                                             \
    win_run runs[WIN_RUNS_MAX];                                                                    \
    const size_t nruns = a->win != NULL ? win_runs(a->win, a->col0 + j, cols, runs) : 0;          \
    for (size_t sp0 = 0; sp0 < total_spans; sp0 += spans) {                                        \
      const size_t sp1 = total_spans - sp0 > spans ? sp0 + spans : total_spans;                    \
      const size_t k0 = sp0 * span, k1 = sp1 * span;                                               \
      const int first = sp0 == 0, last = sp1 == total_spans;                                       \
      if (a->win != NULL)                                                                          \
        pack_window(buf, a->win, a->x, runs, nruns, cols, k0, k1, K, a->k_mask, NV);               \
      else                                                                                         \
        pack_block(buf, x, a->x_stride, k0, k1, K, a->k_mask, NV, MASKED, mask);                   \
      /* Groups of this block: S == 1: g in [sp0, sp1) (one group per span); else S per span. */   \
      const size_t g0 = sp0 * S, g1 = sp1 * S < G ? sp1 * S : G;                                   \
      for (size_t u = u0; u < u1; u++) {                                                           \
        const size_t r = units != NULL ? units[u] : u;                                             \
        float* yr = (float*)((char*)a->y + r * a->y_stride) + j;                                   \
        __m256 a0, a1, a2, a3, a4, a5, a6, a7;                                                     \
        if (first) {                                                                               \
          a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = _mm256_set1_ps(a->bias != NULL ? a->bias[r] : 0.0f); \
        } else {                                                                                   \
          a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = _mm256_setzero_ps();                             \
          LDY1(a, 0, yr, NV, MASKED, mask); LDY1(a, 1, yr, NV, MASKED, mask);                      \
          LDY1(a, 2, yr, NV, MASKED, mask); LDY1(a, 3, yr, NV, MASKED, mask);                      \
          LDY1(a, 4, yr, NV, MASKED, mask); LDY1(a, 5, yr, NV, MASKED, mask);                      \
          LDY1(a, 6, yr, NV, MASKED, mask); LDY1(a, 7, yr, NV, MASKED, mask);                      \
        }                                                                                          \
        const float* val = s->values + ((size_t)r * G + g0) * GN;                                  \
        const uint8_t* idx = s->idx + ((size_t)r * G + g0) * GN;                                   \
        const ptrdiff_t pf = nm_prefetch_distance(nblk, units, u, u1, r, G * GN);                  \
        if (S == 1) {                                                                              \
          const char* gb = (const char*)buf;                                                       \
          const size_t gstep = GM * rowb;                                                          \
          if (GN == 2) {                                                                           \
            for (size_t g = g0; g < g1; g++, gb += gstep, val += 2, idx += 2) {                    \
              if ((g & 7) == 0) NM_PREFETCH(val, idx);                                             \
              const float* x0 = (const float*)(gb + idx[0] * rowb);                                \
              const float* x1 = (const float*)(gb + idx[1] * rowb);                                \
              const __m256 v0 = _mm256_broadcast_ss(val), v1 = _mm256_broadcast_ss(val + 1);      \
              LOADFMA(a, v0, x0, NV);                                                              \
              LOADFMA(a, v1, x1, NV);                                                              \
            }                                                                                      \
          } else {                                                                                 \
            for (size_t g = g0; g < g1; g++, gb += gstep) {                                        \
              if ((g & 7) == 0) NM_PREFETCH(val, idx);                                             \
              for (size_t q = 0; q < GN; q++, val++, idx++) {                                      \
                const float* x0 = (const float*)(gb + *idx * rowb);                                \
                const __m256 v0 = _mm256_broadcast_ss(val);                                        \
                LOADFMA(a, v0, x0, NV);                                                            \
              }                                                                                    \
            }                                                                                      \
          }                                                                                        \
        } else {                                                                                   \
          const size_t istep = S * rowb;                                                           \
          for (size_t g = g0; g < g1; g++) {                                                       \
            if ((g & 7) == 0) NM_PREFETCH(val, idx);                                               \
            /* Column of (g, idx): ((g/S)*m + idx)*S + g%S. */                                    \
            const char* gb = (const char*)buf + (((g / S) * GM) * S + g % S - k0) * rowb;          \
            for (size_t q = 0; q < GN; q++, val++, idx++) {                                        \
              const float* x0 = (const float*)(gb + *idx * istep);                                 \
              const __m256 v0 = _mm256_broadcast_ss(val);                                          \
              LOADFMA(a, v0, x0, NV);                                                              \
            }                                                                                      \
          }                                                                                        \
        }                                                                                          \
        if (last) STORE(yr, a, NV, MASKED, mask, 1, lo, hi);                                       \
        else STORE(yr, a, NV, MASKED, mask, 0, lo, hi);                                            \
      }                                                                                            \
    }                                                                                              \
  }

NM_PANEL(panel8, 8, 0)
NM_PANEL(panel8m, 8, 1)
NM_PANEL(panel7m, 7, 1)
NM_PANEL(panel6m, 6, 1)
NM_PANEL(panel5m, 5, 1)
NM_PANEL(panel4m, 4, 1)
NM_PANEL(panel3m, 3, 1)
NM_PANEL(panel2m, 2, 1)
NM_PANEL(panel1m, 1, 1)

__attribute__((target("avx2,fma"))) void sparrow_spmm_nm_f32_1x64__avx2(
    const sparrow_matrix* w, const uint32_t* units, size_t u0, size_t u1, const sparrow_ukernel_args* a) {
  size_t j = 0;
  for (; j + 64 <= a->n; j += 64) panel8(w, units, u0, u1, a, j, _mm256_setzero_si256());
  const size_t rem = a->n - j;
  if (rem == 0) return;
  const __m256i mask = tail_mask(rem - (rem - 1) / 8 * 8);
  switch ((rem + 7) / 8) {
    case 1: panel1m(w, units, u0, u1, a, j, mask); break;
    case 2: panel2m(w, units, u0, u1, a, j, mask); break;
    case 3: panel3m(w, units, u0, u1, a, j, mask); break;
    case 4: panel4m(w, units, u0, u1, a, j, mask); break;
    case 5: panel5m(w, units, u0, u1, a, j, mask); break;
    case 6: panel6m(w, units, u0, u1, a, j, mask); break;
    case 7: panel7m(w, units, u0, u1, a, j, mask); break;
    default: panel8m(w, units, u0, u1, a, j, mask); break;
  }
}
#endif
