/* Direct int8 convolution, NEON without the dot-product extension (layouts: qconv.h): 16 output
 * channels x 4 output positions per tile, the tiles of the neondot kernel (same panels, same
 * accumulators: one per channel, whose lanes are the positions). Per tap and group of 4 input
 * channels: the 4 positions' words of the planes (one 16-byte load when the 4 positions lie in one
 * output row; else 4 lane loads), transposed by one tbl so that each k's 4 positions are adjacent,
 * and widened to int16 (uxtl; values <= 255 stay positive); the panel's 16 channels x 4 k widened
 * to int16 (sxtl); then per channel and k one smlal by element: the k's 4 positions times the
 * channel's weight, exact in int16 x int16 -> int32. */
#if defined(__aarch64__)
#include <arm_neon.h>

#include "../qgemm/epilogue-neon.h"
#include "qconv.h"

#define MR 16
#define NP 4

/* MLA4: a (one channel, its 4 positions) += the 4 positions at k = 0 .. 3 (x01: k 0, 1; x23: k 2,
 * 3) times the channel's 4 weights, lanes l .. l + 3 of wv. QUAD(q): channels 4 q .. 4 q + 3, their
 * weights widened in pairs (lo: 4 q, 4 q + 1; hi: 4 q + 2, 4 q + 3). */
#define MLA4(a, wv, l)                                    \
  a = vmlal_laneq_s16(a, vget_low_s16(x01), wv, (l));     \
  a = vmlal_high_laneq_s16(a, x01, wv, (l) + 1);          \
  a = vmlal_laneq_s16(a, vget_low_s16(x23), wv, (l) + 2); \
  a = vmlal_high_laneq_s16(a, x23, wv, (l) + 3);
#define QUAD(q)                                     \
  {                                                 \
    const int8x16_t wb = vld1q_s8(w + 16 * (q));    \
    const int16x8_t lo = vmovl_s8(vget_low_s8(wb)); \
    const int16x8_t hi = vmovl_high_s8(wb);         \
    MLA4(acc[4 * (q)], lo, 0)                       \
    MLA4(acc[4 * (q) + 1], lo, 4)                   \
    MLA4(acc[4 * (q) + 2], hi, 0)                   \
    MLA4(acc[4 * (q) + 3], hi, 4)                   \
  }

/* One tile: panel rows from row0 (`rows` of them), positions n .. n + count - 1 (count <= NP).
 * contiguous: count is NP and the positions lie in one output row. */
static inline __attribute__((always_inline)) void tile(const int8_t* w, const sparrow_qconv_geometry* g, size_t rows,
                                                       size_t row0, size_t n, size_t count, const int contiguous,
                                                       const sparrow_qgemm_epilogue* e) {
  /* Bytes p * 4 + k (position p, k) to k * 4 + p. */
  static const uint8_t by_k[16] = {0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15};
  const uint8x16_t transpose = vld1q_u8(by_k);
  int32x4_t acc[MR];
  for (int i = 0; i < MR; i++) acc[i] = vdupq_n_s32(0);
  /* Each lane's word of the planes at tap 0, group 0 (a partial tile repeats its last position). */
  const uint8_t* x[NP];
  sparrow_qconv_positions4(g, n, count, x);
  const size_t gs = g->group_words * 4;
  /* do-while: taps and cq are at least 1 (sparrow_qconv_run); as for loops, clang copied the 16
   * accumulators between registers after every group. */
  size_t t = 0;
  do {
    size_t c = 0, o = g->tap_words[t] * 4;
    do {
      uint8x16_t xv = sparrow_qconv_words4(x, o, contiguous);
      xv = vqtbl1q_u8(xv, transpose);
      const int16x8_t x01 = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(xv)));
      const int16x8_t x23 = vreinterpretq_s16_u16(vmovl_high_u8(xv));
      QUAD(0)
      QUAD(1)
      QUAD(2)
      QUAD(3)
      o += gs, w += MR * 4;
    } while (++c < g->cq);
  } while (++t < g->taps);
  /* Copied out with constant indices, so that the accumulators stay in registers above. */
  int32_t out[MR][4];
  for (int i = 0; i < MR; i++) vst1q_s32(out[i], acc[i]);
  for (size_t i = 0; i < rows; i++) sparrow_qgemm_store4_neon(e, row0 + i, n, vld1q_s32(out[i]), count);
}

void sparrow_qconv_u8s8_16x4__neon(const int8_t* wp, size_t m, size_t p0, size_t p1, const sparrow_qconv_geometry* g,
                                   size_t n0, size_t n1, const sparrow_qgemm_epilogue* e) {
  const size_t kq = g->taps * g->cq;
  for (size_t p = p0; p < p1; p++) {
    const int8_t* w = wp + p * kq * MR * 4;
    const size_t rows = m - p * MR < MR ? m - p * MR : MR;
    for (size_t n = n0; n < n1; n += NP) {
      const size_t count = n1 - n < NP ? n1 - n : NP;
      if (count == NP && n % g->wo + NP <= g->wo)
        tile(w, g, rows, p * MR, n, NP, 1, e);
      else
        tile(w, g, rows, p * MR, n, count, 0, e);
    }
  }
}
#endif
