/* N:M x dense with a shared pattern, AVX2/FMA: blocks of 8 rows, computed as two halves of
 * 4 rows x 24 columns (12 YMM accumulators, 3 for the X row, 1 for a broadcast).
 *
 * Needs the shared layout (formats.h: blocks of 8 rows use the same n positions in every
 * group; the dispatcher binds this kernel only then). Per half and pair: three 8-float loads of
 * the pair's X row, four broadcasts of the half's values and 12 FMAs, the load/FMA ratio of the
 * dense 6x16 AVX2 kernel per k; the X rows of the pruned positions are never loaded, so half of
 * a 2:4 matrix's FMAs are skipped for real. (All 8 rows at once would need 24 accumulators:
 * AVX2 has 16 registers. Each half re-reads the pair stream, a few bytes per pair.)
 *
 * Cache blocking as the AVX-512 8x48 kernel: chunks of up to 64 blocks (their W slices stay in
 * L2), K slices of whole group spans (at most 256 X rows), per slice every 24-column block of
 * X is copied once into a 24 KiB stack panel (L1: zeros for rows past K and masked-out rows,
 * so padding pairs past K and inactive channels multiply zeros) and multiplied by each block
 * of the chunk. Partial sums go through Y between slices; bias and clamp on the last.
 *
 * Units are rows (the N:M contract): consecutive units in one block are computed together and
 * only the rows listed are stored, so tiles that split a block (or output-row lists) stay
 * correct. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "../../pack/formats.h"

#define T __attribute__((target("avx2,fma")))
#define R SPARROW_NM_SHARED_ROWS
#define NR 24
#define KC_ROWS SPARROW_NM_SHARED_SPAN_MAX
#define CHUNK 64

#define ROW(i, NV)                                           \
  {                                                          \
    const __m256 b_ = _mm256_broadcast_ss(wv + (i));         \
    c##i##0 = _mm256_fmadd_ps(b_, x0, c##i##0);              \
    if (NV >= 2) c##i##1 = _mm256_fmadd_ps(b_, x1, c##i##1); \
    if (NV >= 3) c##i##2 = _mm256_fmadd_ps(b_, x2, c##i##2); \
  }

/* acc[i * 3 + v] = sum over the pairs of groups [g0, g1) of value(half * 4 + i) * X row. */
#define BLOCK(NV)                                                                                             \
  static inline T void block##NV(const sparrow_nm* s, size_t b, size_t half, size_t g0, size_t g1, size_t k0, \
                                 const float* xp, __m256 acc[12]) {                                           \
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00;                  \
    __m256 c20 = c00, c21 = c00, c22 = c00, c30 = c00, c31 = c00, c32 = c00;                                  \
    const size_t n = s->n, S = s->stride, span = (size_t)s->m * S, G = s->groups;                             \
    const float* wv = s->shared_values + (b * G + g0) * n * R + half * 4;                                     \
    const uint8_t* ix = s->shared_idx + (b * G + g0) * n;                                                     \
    /* Column of (g, idx): (g / S) * span + g % S + idx * S; g / S and g % S are counters, not a              \
     * division per group (24 FMAs). */                                                                       \
    size_t cg = g0 / S, sg = g0 % S;                                                                          \
    const size_t sn = S * NR;                                                                                 \
    for (size_t g = g0; g < g1; g++) {                                                                        \
      const float* xg = xp + (cg * span + sg - k0) * NR;                                                      \
      if (++sg == S) sg = 0, cg++;                                                                            \
      for (size_t q = 0; q < n; q++, wv += R, ix++) {                                                         \
        const float* xr = xg + (size_t)*ix * sn;                                                              \
        const __m256 x0 = _mm256_load_ps(xr);                                                                 \
        const __m256 x1 = NV >= 2 ? _mm256_load_ps(xr + 8) : x0;                                              \
        const __m256 x2 = NV >= 3 ? _mm256_load_ps(xr + 16) : x0;                                             \
        ROW(0, NV) ROW(1, NV) ROW(2, NV) ROW(3, NV)                                                           \
      }                                                                                                       \
    }                                                                                                         \
    acc[0] = c00, acc[1] = c01, acc[2] = c02, acc[3] = c10, acc[4] = c11, acc[5] = c12;                       \
    acc[6] = c20, acc[7] = c21, acc[8] = c22, acc[9] = c30, acc[10] = c31, acc[11] = c32;                     \
  }
BLOCK(1)
BLOCK(2)
BLOCK(3)

/* Lanes [0, cols - 8 * v) of vector v (all 8 when cols covers it, none when it starts past). */
static inline T __m256i lanes(size_t cols, size_t v) {
  const long rem = (long)cols - (long)(8 * v);
  const int k = rem <= 0 ? 0 : rem >= 8 ? 8 : (int)rem;
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* X rows [k0, k1) of a block of `cols` <= 24 columns into xp (stride NR); rows at or past K and
 * masked-out rows are zeros (never read), as are columns past cols (masked loads). */
static inline T void pack_x(size_t k0, size_t k1, size_t K, const float* x, size_t xs, const uint8_t* mask, size_t cols,
                            float* xp) {
  const __m256i m0 = lanes(cols, 0), m1 = lanes(cols, 1), m2 = lanes(cols, 2);
  for (size_t k = k0; k < k1; k++, xp += NR) {
    if (k >= K || (mask != NULL && !mask[k])) {
      _mm256_store_ps(xp, _mm256_setzero_ps());
      _mm256_store_ps(xp + 8, _mm256_setzero_ps());
      _mm256_store_ps(xp + 16, _mm256_setzero_ps());
      continue;
    }
    const float* xr = x + k * xs;
    if (cols == NR) {
      _mm256_store_ps(xp, _mm256_loadu_ps(xr));
      _mm256_store_ps(xp + 8, _mm256_loadu_ps(xr + 8));
      _mm256_store_ps(xp + 16, _mm256_loadu_ps(xr + 16));
    } else {
      _mm256_store_ps(xp, _mm256_maskload_ps(xr, m0));
      _mm256_store_ps(xp + 8, _mm256_maskload_ps(xr + 8, m1));
      _mm256_store_ps(xp + 16, _mm256_maskload_ps(xr + 16, m2));
    }
  }
}

/* Rows of the half listed in `rows` (bit i: row b*8 + half*4 + i) from the accumulators,
 * columns [0, cols) at y0: the first slice stores, later ones add what Y holds, the last adds
 * bias and clamps. */
static inline T void store_half(size_t b, size_t half, unsigned rows, const __m256 acc[12], size_t cols, float* y0,
                                size_t ys, const float* bias, int first, int last, __m256 lo, __m256 hi) {
  const size_t nv = (cols + 7) / 8;
  const __m256i tail = lanes(cols, nv - 1);
  for (size_t i = 0; i < 4; i++) {
    if (!(rows >> i & 1)) continue;
    const size_t r = b * R + half * 4 + i;
    float* y = y0 + r * ys;
    const __m256 bv = _mm256_set1_ps(bias != NULL ? bias[r] : 0.0f);
    for (size_t v = 0; v < nv; v++) {
      const int masked = v + 1 == nv && cols < 8 * nv;
      __m256 t = acc[i * 3 + v];
      if (!first) t = _mm256_add_ps(t, masked ? _mm256_maskload_ps(y + v * 8, tail) : _mm256_loadu_ps(y + v * 8));
      if (last) t = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(t, bv), lo), hi);
      if (masked)
        _mm256_maskstore_ps(y + v * 8, tail, t);
      else
        _mm256_storeu_ps(y + v * 8, t);
    }
  }
}

T void sparrow_spmm_nm_f32_8x24__avx2(const sparrow_matrix* w, const uint32_t* units, size_t u0, size_t u1,
                                      const sparrow_ukernel_args* a) {
  const sparrow_nm* s = &w->u.nm;
  const size_t K = w->k, M = w->m, n = a->n, xs = a->x_stride / sizeof(float), ys = a->y_stride / sizeof(float);
  const size_t S = s->stride, span = (size_t)s->m * S;
  const size_t total_spans = (K + span - 1) / span;
  size_t spans = KC_ROWS / span;
  if (spans == 0) spans = 1; /* the dispatcher keeps span <= KC_ROWS */
  const size_t slices = (total_spans + spans - 1) / spans;
  spans = (total_spans + slices - 1) / slices;
  const __m256 lo = _mm256_set1_ps(a->lo), hi = _mm256_set1_ps(a->hi);
  float xp[KC_ROWS * NR] __attribute__((aligned(32)));
  size_t blk[CHUNK];
  unsigned rows[CHUNK];
  size_t u = u0;
  while (u < u1) {
    /* The next chunk: blocks of consecutive units, with the rows listed in each. */
    size_t nb = 0;
    while (u < u1 && nb < CHUNK) {
      const size_t r0 = units != NULL ? units[u] : u, b = r0 / R;
      unsigned mask = 0;
      for (; u < u1; u++) {
        const size_t r = units != NULL ? units[u] : u;
        if (r / R != b) break;
        if (r < M) mask |= 1u << (r % R);
      }
      blk[nb] = b;
      rows[nb++] = mask;
    }
    for (size_t sp0 = 0; sp0 < total_spans; sp0 += spans) {
      const size_t sp1 = total_spans - sp0 > spans ? sp0 + spans : total_spans;
      const size_t k0 = sp0 * span, k1 = sp1 * span;
      const size_t g0 = sp0 * S, g1 = sp1 * S < s->groups ? sp1 * S : s->groups;
      const int first = sp0 == 0, last = sp1 == total_spans;
      for (size_t j0 = 0; j0 < n; j0 += NR) {
        const size_t cols = n - j0 < NR ? n - j0 : NR;
        pack_x(k0, k1, K, a->x + j0, xs, a->k_mask, cols, xp);
        for (size_t i = 0; i < nb; i++) {
          for (size_t half = 0; half < 2; half++) {
            const unsigned hr = rows[i] >> (4 * half) & 0xFu;
            if (hr == 0) continue;
            __m256 acc[12];
            if (cols > 16)
              block3(s, blk[i], half, g0, g1, k0, xp, acc);
            else if (cols > 8)
              block2(s, blk[i], half, g0, g1, k0, xp, acc);
            else
              block1(s, blk[i], half, g0, g1, k0, xp, acc);
            store_half(blk[i], half, hr, acc, cols, a->y + j0, ys, a->bias, first, last, lo, hi);
          }
        }
      }
    }
  }
}
#endif
