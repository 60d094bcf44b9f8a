/* N:M x dense with a shared pattern, AVX-512F: 8 rows x 48 columns (24 zmm accumulators).
 *
 * Needs the shared layout (formats.h: blocks of 8 rows use the same n positions in every
 * group; the dispatcher binds this kernel only then). A block of 8 rows is then a dense 8-row
 * panel over the K * n / m kept columns, each kept column naming the X row it multiplies: per
 * pair, three 16-float loads of that X row, eight broadcasts of the pair's 8 contiguous values
 * and 24 FMAs, as the dense 8x48 kernel does per k. Half of a 2:4 block's FMAs are skipped for
 * real: the X rows of the pruned positions are never loaded.
 *
 * Cache blocking as the dense kernel: chunks of up to 64 blocks (their W slices stay in L2),
 * K slices of whole group spans (at most 256 X rows), per slice every 48-column block of X is
 * copied once into a 48 KiB stack panel (zeros for rows past K and masked-out rows, so
 * padding pairs past K and inactive channels multiply zeros) and multiplied by each block of
 * the chunk. Partial sums go through Y between slices; bias and clamp on the last.
 *
 * Units are rows (the N:M contract): consecutive units in one block are computed together and
 * only the rows listed are stored, so tiles that split a block (or output-row lists) stay
 * correct; the driver gives this kernel tiles of whole blocks where it can. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "../../pack/formats.h"

#define T __attribute__((target("avx512f,avx2,fma")))
#define R SPARROW_NM_SHARED_ROWS
#define NR 48
#define KC_ROWS SPARROW_NM_SHARED_SPAN_MAX
#define CHUNK 64

#define ROW(i, NV)                                           \
  {                                                          \
    const __m512 b_ = _mm512_set1_ps(wv[i]);                 \
    c##i##0 = _mm512_fmadd_ps(b_, x0, c##i##0);              \
    if (NV >= 2) c##i##1 = _mm512_fmadd_ps(b_, x1, c##i##1); \
    if (NV >= 3) c##i##2 = _mm512_fmadd_ps(b_, x2, c##i##2); \
  }

/* acc[i * 3 + v] = sum over the pairs of groups [g0, g1) of value(i) * X row of the pair. */
#define BLOCK(NV)                                                                                                 \
  static inline T void block##NV(const sparrow_nm* s, size_t b, size_t g0, size_t g1, size_t k0, const float* xp, \
                                 __m512 acc[24]) {                                                                \
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00;                      \
    __m512 c20 = c00, c21 = c00, c22 = c00, c30 = c00, c31 = c00, c32 = c00;                                      \
    __m512 c40 = c00, c41 = c00, c42 = c00, c50 = c00, c51 = c00, c52 = c00;                                      \
    __m512 c60 = c00, c61 = c00, c62 = c00, c70 = c00, c71 = c00, c72 = c00;                                      \
    const size_t n = s->n, S = s->stride, span = (size_t)s->m * S, G = s->groups;                                 \
    const float* wv = s->shared_values + (b * G + g0) * n * R;                                                    \
    const uint8_t* ix = s->shared_idx + (b * G + g0) * n;                                                         \
    for (size_t g = g0; g < g1; g++) {                                                                            \
      /* Column of (g, idx): (g / S) * span + g % S + idx * S. */                                                 \
      const float* xg = xp + ((g / S) * span + g % S - k0) * NR;                                                  \
      for (size_t q = 0; q < n; q++, wv += R, ix++) {                                                             \
        const float* xr = xg + (size_t)*ix * S * NR;                                                              \
        const __m512 x0 = _mm512_load_ps(xr);                                                                     \
        const __m512 x1 = NV >= 2 ? _mm512_load_ps(xr + 16) : x0;                                                 \
        const __m512 x2 = NV >= 3 ? _mm512_load_ps(xr + 32) : x0;                                                 \
        ROW(0, NV) ROW(1, NV) ROW(2, NV) ROW(3, NV) ROW(4, NV) ROW(5, NV) ROW(6, NV) ROW(7, NV)                   \
      }                                                                                                           \
    }                                                                                                             \
    acc[0] = c00, acc[1] = c01, acc[2] = c02, acc[3] = c10, acc[4] = c11, acc[5] = c12;                           \
    acc[6] = c20, acc[7] = c21, acc[8] = c22, acc[9] = c30, acc[10] = c31, acc[11] = c32;                         \
    acc[12] = c40, acc[13] = c41, acc[14] = c42, acc[15] = c50, acc[16] = c51, acc[17] = c52;                     \
    acc[18] = c60, acc[19] = c61, acc[20] = c62, acc[21] = c70, acc[22] = c71, acc[23] = c72;                     \
  }
BLOCK(1)
BLOCK(2)
BLOCK(3)

/* X rows [k0, k1) of a block of `cols` <= 48 columns into xp (stride NR); rows at or past K and
 * masked-out rows are zeros (never read), as are columns past cols (masked loads). */
static inline T void pack_x(size_t k0, size_t k1, size_t K, const float* x, size_t xs, const uint8_t* mask, size_t cols,
                            float* xp) {
  const __mmask16 m0 = cols >= 16 ? 0xFFFF : (__mmask16)((1u << cols) - 1);
  const __mmask16 m1 = cols >= 32 ? 0xFFFF : cols <= 16 ? 0 : (__mmask16)((1u << (cols - 16)) - 1);
  const __mmask16 m2 = cols >= 48 ? 0xFFFF : cols <= 32 ? 0 : (__mmask16)((1u << (cols - 32)) - 1);
  for (size_t k = k0; k < k1; k++, xp += NR) {
    if (k >= K || (mask != NULL && !mask[k])) {
      _mm512_store_ps(xp, _mm512_setzero_ps());
      _mm512_store_ps(xp + 16, _mm512_setzero_ps());
      _mm512_store_ps(xp + 32, _mm512_setzero_ps());
      continue;
    }
    const float* xr = x + k * xs;
    _mm512_store_ps(xp, _mm512_maskz_loadu_ps(m0, xr));
    _mm512_store_ps(xp + 16, _mm512_maskz_loadu_ps(m1, xr + 16));
    _mm512_store_ps(xp + 32, _mm512_maskz_loadu_ps(m2, xr + 32));
  }
}

/* Rows of block b listed in `rows` (bit i: row b*8+i) from the accumulators, columns [0, cols)
 * at y0: the first slice stores, later ones add what Y holds, the last adds bias and clamps. */
static inline T void store_block(size_t b, unsigned rows, const __m512 acc[24], size_t cols, float* y0, size_t ys,
                                 const float* bias, int first, int last, __m512 lo, __m512 hi) {
  const size_t nv = (cols + 15) / 16;
  const __mmask16 tail = (__mmask16)(0xFFFFu >> (nv * 16 - cols));
  for (size_t i = 0; i < R; i++) {
    if (!(rows >> i & 1)) continue;
    const size_t r = b * R + i;
    float* y = y0 + r * ys;
    const __m512 bv = _mm512_set1_ps(bias != NULL ? bias[r] : 0.0f);
    for (size_t v = 0; v < nv; v++) {
      const __mmask16 mk = v + 1 == nv ? tail : 0xFFFF;
      __m512 t = acc[i * 3 + v];
      if (!first) t = _mm512_add_ps(t, _mm512_maskz_loadu_ps(mk, y + v * 16));
      if (last) t = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(t, bv), lo), hi);
      _mm512_mask_storeu_ps(y + v * 16, mk, t);
    }
  }
}

T void sparrow_spmm_nm_f32_8x48__avx512f(const sparrow_matrix* w, const uint32_t* units, size_t u0, size_t u1,
                                         const sparrow_ukernel_args* a) {
  const sparrow_nm* s = &w->u.nm;
  const size_t K = w->k, M = w->m, n = a->n, xs = a->x_stride / sizeof(float), ys = a->y_stride / sizeof(float);
  const size_t S = s->stride, span = (size_t)s->m * S;
  const size_t total_spans = (K + span - 1) / span;
  size_t spans = KC_ROWS / span;
  if (spans == 0) spans = 1; /* the dispatcher keeps span <= KC_ROWS */
  const size_t slices = (total_spans + spans - 1) / spans;
  spans = (total_spans + slices - 1) / slices;
  const __m512 lo = _mm512_set1_ps(a->lo), hi = _mm512_set1_ps(a->hi);
  float xp[KC_ROWS * NR] __attribute__((aligned(64)));
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
          __m512 acc[24];
          if (cols > 32)
            block3(s, blk[i], g0, g1, k0, xp, acc);
          else if (cols > 16)
            block2(s, blk[i], g0, g1, k0, xp, acc);
          else
            block1(s, blk[i], g0, g1, k0, xp, acc);
          store_block(blk[i], rows[i], acc, cols, a->y + j0, ys, a->bias, first, last, lo, hi);
        }
      }
    }
  }
}
#endif
