/* N:M x dense, AVX-512F: one row x up to 128 columns (8 zmm accumulators) per pass.
 *
 * The AVX2 1x64 kernel's plan with 16-lane vectors: per panel (n split evenly,
 * z_panel_width), K blocks of whole group spans of X are copied into an aligned stack buffer
 * (masked-out rows and rows past K become zeros), then every row of the tile runs its pairs of
 * that block; partial sums go through Y between blocks. Padding pairs (value 0) are computed
 * like the others: they point at a buffer row that is finite or zero. For rows whose pattern is
 * shared by blocks of 8 rows the 8x48 kernel comes first in the list; this one takes any N:M
 * matrix whose group span fits the buffer (m * stride * 128 floats <= SPARROW_NM_AVX512_BUF;
 * the dispatcher checks). */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "../../pack/formats.h"
#include "nm-prefetch.h"

#include "../avx512-1x128.h"

#define NM_BUF SPARROW_NM_AVX512_BUF
/* Floats of X per K block, so the FMAs' loads hit L1: 32 KiB, or 40 KiB where L1 holds 48 KiB
 * or more (Zen 5, MiniLM 2:4 at 1 thread: 40 KiB 10.1 ms, 32 KiB 10.4-11.1, 48 KiB 10.8, 64 KiB
 * 12.3: the weights, indices and Y rows need the rest of L1). */
static inline size_t nm_block_floats(void) { return sparrow_l1d_bytes() >= 49152 ? 10240 : 8192; }

/* Pair q of four groups whose indices are the bytes of iw (group q at gb + q * gstep). */
#define NM_PAIR4(NV, Q)                                                                         \
  {                                                                                             \
    const float* x0 = (const float*)(gb + (Q) * gstep + ((iw >> (16 * (Q))) & 0xff) * rowb);    \
    const float* x1 = (const float*)(gb + (Q) * gstep + ((iw >> (16 * (Q) + 8)) & 0xff) * rowb); \
    const __m512 v0 = _mm512_set1_ps(val[2 * (Q)]), v1 = _mm512_set1_ps(val[2 * (Q) + 1]);     \
    ZLOADFMA(a, v0, x0, NV);                                                                    \
    ZLOADFMA(a, v1, x1, NV);                                                                    \
  }

#define NM_PANEL(NAME, NV)                                                                                   \
  SPARROW_AVX512_FN void NAME(const sparrow_matrix* w, const uint32_t* units, size_t u0, size_t u1,          \
                              const sparrow_ukernel_args* a, size_t j, size_t cols) {                        \
    const sparrow_nm* s = &w->u.nm;                                                                          \
    const size_t S = s->stride, GM = s->m, GN = s->n, G = s->groups, K = w->k;                               \
    const size_t span = GM * S;                                                                              \
    const size_t rowb = (NV) * 64;                                                                           \
    size_t spans = (nm_block_floats() / (16 * (NV))) / span;                                                 \
    if (spans == 0) spans = 1;                                                                               \
    const size_t total_spans = (K + span - 1) / span;                                                        \
    const size_t nblk = (total_spans + spans - 1) / spans;                                                   \
    spans = (total_spans + nblk - 1) / nblk;                                                                 \
    const __m512 lo = _mm512_set1_ps(a->lo), hi = _mm512_set1_ps(a->hi);                                    \
    const __mmask16 tail = z_tail(cols, NV);                                                                 \
    const char* x = (const char*)(a->x + j);                                                                 \
    float buf[NM_BUF + WIN_SPILL] __attribute__((aligned(64)));                                              \
    win_run runs[WIN_RUNS_MAX512];                                                                           \
    const size_t nruns = a->win != NULL ? win_runs(a->win, a->col0 + j, cols, runs) : 0;                    \
    for (size_t sp0 = 0; sp0 < total_spans; sp0 += spans) {                                                  \
      const size_t sp1 = total_spans - sp0 > spans ? sp0 + spans : total_spans;                              \
      const size_t k0 = sp0 * span, k1 = sp1 * span;                                                         \
      const int first = sp0 == 0, last = sp1 == total_spans;                                                 \
      if (a->win != NULL)                                                                                    \
        pack_window(buf, a->win, a->x, runs, nruns, cols, k0, k1, K, a->k_mask, 2 * (NV));                   \
      else                                                                                                   \
        z_pack_block(buf, x, a->x_stride, k0, k1, K, a->k_mask, NV, tail);                                   \
      const size_t g0 = sp0 * S, g1 = sp1 * S < G ? sp1 * S : G;                                             \
      for (size_t u = u0; u < u1; u++) {                                                                     \
        const size_t r = units != NULL ? units[u] : u;                                                       \
        float* yr = (float*)((char*)a->y + r * a->y_stride) + j;                                             \
        __m512 a0, a1, a2, a3, a4, a5, a6, a7;                                                               \
        if (first) {                                                                                         \
          a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = _mm512_set1_ps(a->bias != NULL ? a->bias[r] : 0.0f);      \
        } else {                                                                                             \
          a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = _mm512_setzero_ps();                                       \
          ZLOADY(a, yr, NV, tail);                                                                           \
        }                                                                                                    \
        const float* val = s->values + ((size_t)r * G + g0) * GN;                                            \
        const uint8_t* idx = s->idx + ((size_t)r * G + g0) * GN;                                             \
        const ptrdiff_t pf = nm_prefetch_distance(nblk, units, u, u1, r, G * GN);                            \
        if (S == 1 && GN == 2) {                                                                             \
          const char* gb = (const char*)buf;                                                                 \
          const size_t gstep = GM * rowb;                                                                    \
          size_t g = g0;                                                                                     \
          /* Four groups' eight indices in one load: an index load per pair holds the FMAs back. */          \
          for (; g + 4 <= g1; g += 4, gb += 4 * gstep, val += 8, idx += 8) {                                 \
            if (((g - g0) & 4) == 0) NM_PREFETCH(val, idx);                                                  \
            uint64_t iw;                                                                                     \
            memcpy(&iw, idx, sizeof iw);                                                                     \
            NM_PAIR4(NV, 0) NM_PAIR4(NV, 1) NM_PAIR4(NV, 2) NM_PAIR4(NV, 3)                                  \
          }                                                                                                  \
          for (; g < g1; g++, gb += gstep, val += 2, idx += 2) {                                             \
            const float* x0 = (const float*)(gb + idx[0] * rowb);                                            \
            const float* x1 = (const float*)(gb + idx[1] * rowb);                                            \
            const __m512 v0 = _mm512_set1_ps(val[0]), v1 = _mm512_set1_ps(val[1]);                          \
            ZLOADFMA(a, v0, x0, NV);                                                                         \
            ZLOADFMA(a, v1, x1, NV);                                                                         \
          }                                                                                                  \
        } else {                                                                                             \
          const size_t istep = S * rowb;                                                                     \
          for (size_t g = g0; g < g1; g++) {                                                                 \
            if ((g & 7) == 0) NM_PREFETCH(val, idx);                                                         \
            /* Column of (g, idx): ((g/S)*m + idx)*S + g%S. */                                              \
            const char* gb = (const char*)buf + (((g / S) * GM) * S + g % S - k0) * rowb;                    \
            for (size_t q = 0; q < GN; q++, val++, idx++) {                                                  \
              const float* x0 = (const float*)(gb + *idx * istep);                                           \
              const __m512 v0 = _mm512_set1_ps(*val);                                                        \
              ZLOADFMA(a, v0, x0, NV);                                                                       \
            }                                                                                                \
          }                                                                                                  \
        }                                                                                                    \
        if (last) ZSTORE(yr, a, NV, tail, 1, lo, hi);                                                        \
        else ZSTORE(yr, a, NV, tail, 0, lo, hi);                                                             \
      }                                                                                                      \
    }                                                                                                        \
  }

NM_PANEL(panel1, 1)
NM_PANEL(panel2, 2)
NM_PANEL(panel3, 3)
NM_PANEL(panel4, 4)
NM_PANEL(panel5, 5)
NM_PANEL(panel6, 6)
NM_PANEL(panel7, 7)
NM_PANEL(panel8, 8)

#define CALL(NV) panel##NV(w, units, u0, u1, a, j, cols)

__attribute__((target("avx512f,avx2,fma"))) void sparrow_spmm_nm_f32_1x128__avx512f(
    const sparrow_matrix* w, const uint32_t* units, size_t u0, size_t u1, const sparrow_ukernel_args* a) {
  Z_FOR_PANELS(a->n, CALL);
}
#endif
