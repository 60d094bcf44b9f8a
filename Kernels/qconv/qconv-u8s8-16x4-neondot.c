/* Direct int8 convolution, NEON with the dot-product extension (sdot, Armv8.2 FEAT_DotProd;
 * chosen at run time from HWCAP_ASIMDDP; layouts: qconv.h): 16 output channels x 4 output
 * positions per tile. Per tap and group of 4 input channels: the 4 positions' words of the planes
 * in one register (one 16-byte load when the 4 positions lie in one output row, where their words
 * are consecutive; else 4 lane loads), the panel's 16 channels x 4 k in four registers, and one
 * lane-indexed sdot per channel: 16 accumulators, one per channel, whose lanes are the positions,
 * so the epilogue stores each channel's run of positions into its output row as it is.
 *
 * As the dense neondot kernel: sdot multiplies signed by signed bytes, so the planes' uint8 values
 * are moved to int8 (x ^ 0x80 = x - 128) on load and the difference added back once per channel:
 * sum (x - 128) w + 128 sum w = sum x w. */
#if defined(__aarch64__)
#include <arm_neon.h>

#include "../qgemm/epilogue-neon.h"
#include "qconv.h"

#include "../qgemm/neondot.h"
#define MR 16
#define NP 4

/* One tile: panel rows from row0 (`rows` of them), positions n .. n + count - 1 (count <= NP).
 * contiguous: count is NP and the positions lie in one output row. */
T static inline __attribute__((always_inline)) void tile(const int8_t* w, const sparrow_qconv_geometry* g, size_t rows,
                                                         size_t row0, size_t n, size_t count, const int contiguous,
                                                         const sparrow_qgemm_epilogue* e) {
  const uint8x16_t flip = vdupq_n_u8(0x80);
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
      const uint8x16_t xv = sparrow_qconv_words4(x, o, contiguous);
      const int8x16_t xs = vreinterpretq_s8_u8(veorq_u8(xv, flip));
      const int8x16_t w0 = vld1q_s8(w), w1 = vld1q_s8(w + 16), w2 = vld1q_s8(w + 32), w3 = vld1q_s8(w + 48);
      acc[0] = vdotq_laneq_s32(acc[0], xs, w0, 0);
      acc[1] = vdotq_laneq_s32(acc[1], xs, w0, 1);
      acc[2] = vdotq_laneq_s32(acc[2], xs, w0, 2);
      acc[3] = vdotq_laneq_s32(acc[3], xs, w0, 3);
      acc[4] = vdotq_laneq_s32(acc[4], xs, w1, 0);
      acc[5] = vdotq_laneq_s32(acc[5], xs, w1, 1);
      acc[6] = vdotq_laneq_s32(acc[6], xs, w1, 2);
      acc[7] = vdotq_laneq_s32(acc[7], xs, w1, 3);
      acc[8] = vdotq_laneq_s32(acc[8], xs, w2, 0);
      acc[9] = vdotq_laneq_s32(acc[9], xs, w2, 1);
      acc[10] = vdotq_laneq_s32(acc[10], xs, w2, 2);
      acc[11] = vdotq_laneq_s32(acc[11], xs, w2, 3);
      acc[12] = vdotq_laneq_s32(acc[12], xs, w3, 0);
      acc[13] = vdotq_laneq_s32(acc[13], xs, w3, 1);
      acc[14] = vdotq_laneq_s32(acc[14], xs, w3, 2);
      acc[15] = vdotq_laneq_s32(acc[15], xs, w3, 3);
      o += gs, w += MR * 4;
    } while (++c < g->cq);
  } while (++t < g->taps);
  /* Copied out with constant indices: indexed by `i < rows` below, the accumulators were stored
   * to the stack after every group (clang 21). */
  int32_t out[MR][4];
  for (int i = 0; i < MR; i++) vst1q_s32(out[i], acc[i]);
  for (size_t i = 0; i < rows; i++) {
    const int32x4_t fix = vdupq_n_s32((int32_t)(128u * (uint32_t)e->row_sums[row0 + i]));
    sparrow_qgemm_store4_neon(e, row0 + i, n, vaddq_s32(vld1q_s32(out[i]), fix), count);
  }
}

T void sparrow_qconv_u8s8_16x4__neondot(const int8_t* wp, size_t m, size_t p0, size_t p1,
                                        const sparrow_qconv_geometry* g, size_t n0, size_t n1,
                                        const sparrow_qgemm_epilogue* e) {
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
