/* Depthwise rows, AVX2/FMA: blocks of G output rows x P 8-lane vectors (G * P <= 8 independent
 * FMA chains) over the call's rows: rows of 57 or more outputs go 64 lanes at a time (G = 1,
 * P = 8) and then their rest; narrower rows are taken several at once (eight 7-wide rows, four
 * 16-wide, two 24- or 32-wide), so that even MobileNetV2's 7x7 maps keep eight sums in flight.
 * Loads are whole vectors (a row's last vector reads up to 7 floats past it, dwconv.h); stores
 * of a partial last vector are masked. Until 2026-12 this kernel ran one row per call and one
 * chain per 8-lane rest, FMA-latency bound on the narrow maps (depthwise was 54% of
 * MobileNetV2 90%). */
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdint.h>

#include "dwconv.h"

#define TARGET __attribute__((target("avx2,fma")))

/* NaN stays NaN: max/min return their second operand when either is NaN. */
TARGET static inline __m256 clamp8(__m256 v, __m256 lo, __m256 hi) { return _mm256_min_ps(hi, _mm256_max_ps(lo, v)); }

typedef struct {
  size_t taps, row_step, wo;
  const size_t* offsets;
  const float* weights;
  __m256 vb, vlo, vhi;
  __m256i tail; /* lanes of a row's last vector when wo % 8 != 0 */
  int partial;  /* wo % 8 != 0 */
} dw_args;

/* G rows x P vectors starting at input `in` / output `out` (rows row_step / wo floats apart),
 * vectors at column offsets 8p; `last` (P-1 is the row's last vector) masks its store. */
#define DW_BLOCK(G, P)                                                                                             \
  TARGET static inline void block_##G##x##P(const dw_args* a, const float* in, float* out, int last) {             \
    __m256 acc[(G) * (P)];                                                                                         \
    for (int i = 0; i < (G) * (P); i++) acc[i] = a->vb;                                                            \
    for (size_t t = 0; t < a->taps; t++) {                                                                         \
      const float* p0 = in + a->offsets[t];                                                                        \
      const __m256 wt = _mm256_broadcast_ss(a->weights + t);                                                       \
      for (int g = 0; g < (G); g++)                                                                                \
        for (int p = 0; p < (P); p++)                                                                              \
          acc[g * (P) + p] = _mm256_fmadd_ps(_mm256_loadu_ps(p0 + g * a->row_step + 8 * p), wt, acc[g * (P) + p]); \
    }                                                                                                              \
    for (int g = 0; g < (G); g++)                                                                                  \
      for (int p = 0; p < (P); p++) {                                                                              \
        const __m256 c = clamp8(acc[g * (P) + p], a->vlo, a->vhi);                                                 \
        float* o = out + g * a->wo + 8 * p;                                                                        \
        if (last && p == (P) - 1 && a->partial)                                                                    \
          _mm256_maskstore_ps(o, a->tail, c);                                                                      \
        else                                                                                                       \
          _mm256_storeu_ps(o, c);                                                                                  \
      }                                                                                                            \
  }
DW_BLOCK(1, 1)
DW_BLOCK(1, 2)
DW_BLOCK(1, 3)
DW_BLOCK(1, 4)
DW_BLOCK(1, 5)
DW_BLOCK(1, 6)
DW_BLOCK(1, 7)
DW_BLOCK(1, 8)
DW_BLOCK(8, 1)
DW_BLOCK(4, 2)
DW_BLOCK(2, 3)
DW_BLOCK(2, 4)

/* One row's vectors [v0, v0 + n) (n <= 8), the row's last among them when `last`. */
TARGET static void row_part(const dw_args* a, const float* in, float* out, size_t n, int last) {
  switch (n) {
    case 1:
      block_1x1(a, in, out, last);
      break;
    case 2:
      block_1x2(a, in, out, last);
      break;
    case 3:
      block_1x3(a, in, out, last);
      break;
    case 4:
      block_1x4(a, in, out, last);
      break;
    case 5:
      block_1x5(a, in, out, last);
      break;
    case 6:
      block_1x6(a, in, out, last);
      break;
    case 7:
      block_1x7(a, in, out, last);
      break;
    default:
      block_1x8(a, in, out, last);
      break;
  }
}

TARGET void sparrow_dwconv_f32_1x32__avx2(size_t wo, size_t rows, size_t taps, const float* row, size_t row_step,
                                          const size_t* offsets, const float* weights, float bias, float lo, float hi,
                                          float* out) {
  const size_t per = (wo + 7) / 8;
  dw_args a = {taps,
               row_step,
               wo,
               offsets,
               weights,
               _mm256_set1_ps(bias),
               _mm256_set1_ps(lo),
               _mm256_set1_ps(hi),
               _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(wo % 8)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)),
               wo % 8 != 0};
  if (per >= 5) {
    /* Wide rows: 64 lanes at a time, then the rest of the row (one to eight vectors). */
    for (size_t r = 0; r < rows; r++) {
      const float* in = row + r * row_step;
      float* o = out + r * wo;
      size_t v = 0;
      for (; v + 8 < per; v += 8) block_1x8(&a, in + 8 * v, o + 8 * v, 0);
      row_part(&a, in + 8 * v, o + 8 * v, per - v, 1);
    }
    return;
  }
  /* Narrow rows: G rows x per vectors per block. */
  const size_t G = per == 1 ? 8 : per == 2 ? 4 : 2;
  size_t r = 0;
  for (; r + G <= rows; r += G) {
    const float* in = row + r * row_step;
    float* o = out + r * wo;
    switch (per) {
      case 1:
        block_8x1(&a, in, o, 1);
        break;
      case 2:
        block_4x2(&a, in, o, 1);
        break;
      case 3:
        block_2x3(&a, in, o, 1);
        break;
      default:
        block_2x4(&a, in, o, 1);
        break;
    }
  }
  for (; r < rows; r++) row_part(&a, row + r * row_step, out + r * wo, per, 1);
}
#endif
