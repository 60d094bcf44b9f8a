/* Depthwise rows, AVX-512F: the AVX2 kernel's plan (dwconv-f32-1x32-avx2.c) with 16-lane
 * vectors: blocks of G output rows x P vectors (G * P <= 8 independent FMA chains); rows of 65 or
 * more outputs go 128 lanes at a time and then their rest; narrower rows several at once (eight
 * rows of up to 16 outputs, four of up to 32, two of up to 64). Each tap's load feeds twice the
 * lanes of an AVX2 load: depthwise is load-bound (one unaligned load per FMA), so wide rows gain
 * most; a row's partial last vector is read whole (up to 15 floats past it, dwconv.h) and stored
 * under a mask. Measured (Intel Xeon, MobileNetV2 224, 1 thread, `--profile`, two alternated
 * pairs): its 17 depthwise layers 2.60-2.84 -> 2.50-2.64 ms, 3-7%: the layers are bound by
 * memory, not by this loop (the 112x112 stride-2 layer, 0.61 ms, moves its 4.8 MB input through
 * the driver's padded phase copy at ~4 GFLOP/s of useful work). */
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdint.h>

#include "dwconv.h"

#define TARGET __attribute__((target("avx512f,avx2,fma")))

/* NaN stays NaN: max/min return their second operand when either is NaN. */
TARGET static inline __m512 clamp16(__m512 v, __m512 lo, __m512 hi) { return _mm512_min_ps(hi, _mm512_max_ps(lo, v)); }

typedef struct {
  size_t taps, row_step, wo;
  const size_t* offsets;
  const float* weights;
  __m512 vb, vlo, vhi;
  __mmask16 tail; /* lanes of a row's last vector when wo % 16 != 0 */
  int partial;    /* wo % 16 != 0 */
} dw_args;

/* G rows x P vectors starting at input `in` / output `out` (rows row_step / wo floats apart),
 * vectors at column offsets 16p; `last` (P-1 is the row's last vector) masks its store. */
#define DW_BLOCK(G, P)                                                                                              \
  TARGET static inline void block_##G##x##P(const dw_args* a, const float* in, float* out, int last) {              \
    __m512 acc[(G) * (P)];                                                                                          \
    for (int i = 0; i < (G) * (P); i++) acc[i] = a->vb;                                                             \
    for (size_t t = 0; t < a->taps; t++) {                                                                          \
      const float* p0 = in + a->offsets[t];                                                                         \
      const __m512 wt = _mm512_set1_ps(a->weights[t]);                                                              \
      for (int g = 0; g < (G); g++)                                                                                 \
        for (int p = 0; p < (P); p++)                                                                               \
          acc[g * (P) + p] = _mm512_fmadd_ps(_mm512_loadu_ps(p0 + g * a->row_step + 16 * p), wt, acc[g * (P) + p]); \
    }                                                                                                               \
    for (int g = 0; g < (G); g++)                                                                                   \
      for (int p = 0; p < (P); p++) {                                                                               \
        const __m512 c = clamp16(acc[g * (P) + p], a->vlo, a->vhi);                                                 \
        float* o = out + g * a->wo + 16 * p;                                                                        \
        if (last && p == (P) - 1 && a->partial)                                                                     \
          _mm512_mask_storeu_ps(o, a->tail, c);                                                                     \
        else                                                                                                        \
          _mm512_storeu_ps(o, c);                                                                                   \
      }                                                                                                             \
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

TARGET void sparrow_dwconv_f32_1x64__avx512f(size_t wo, size_t rows, size_t taps, const float* row, size_t row_step,
                                             const size_t* offsets, const float* weights, float bias, float lo,
                                             float hi, float* out) {
  const size_t per = (wo + 15) / 16;
  dw_args a = {taps,
               row_step,
               wo,
               offsets,
               weights,
               _mm512_set1_ps(bias),
               _mm512_set1_ps(lo),
               _mm512_set1_ps(hi),
               (__mmask16)((1u << (wo % 16)) - 1u),
               wo % 16 != 0};
  if (per >= 5) {
    /* Wide rows: 128 lanes at a time, then the rest of the row (one to eight vectors). */
    for (size_t r = 0; r < rows; r++) {
      const float* in = row + r * row_step;
      float* o = out + r * wo;
      size_t v = 0;
      for (; v + 8 < per; v += 8) block_1x8(&a, in + 16 * v, o + 16 * v, 0);
      row_part(&a, in + 16 * v, o + 16 * v, per - v, 1);
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
