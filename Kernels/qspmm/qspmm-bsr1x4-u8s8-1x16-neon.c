/* Sparse int8 GEMM over 1x4 blocks (qspmm.h), NEON without the dot-product extension: one row x
 * up to 16 columns per step. As the dense 4x4 NEON kernel: a block's 4 weights widened to int16
 * and repeated, the X group's bytes (4 k of each column) widened to int16 (ushll: values <= 255
 * stay positive), and smlal / smlal2 add the exact int16 x int16 products into one int32x4 per
 * column whose lanes are the 4 k; pairwise adds give the column sums after the row's last block.
 *
 * As the AVX-512 VNNI kernel: a tile of 16 columns outside, the rows inside, so every row reads
 * the same K x 16 bytes of X from L1. The last tile (n % 16 columns) computes only the groups of
 * 4 columns it needs (one of four at n = 1); a group's pad columns are read (packed X's rows are
 * sparrow_qgemm_ldx(n) columns long, so they exist) but never stored. */
#if defined(__aarch64__)
#include <arm_neon.h>

#include "qspmm.h"

/* Lanes of a, b, c, d summed: {sum a, sum b, sum c, sum d}. */
static inline int32x4_t sum4(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d) {
  return vpaddq_s32(vpaddq_s32(a, b), vpaddq_s32(c, d));
}

/* Row r over the `cols` columns from col (nq = ceil(cols / 4) groups of 4 columns, a constant
 * once inlined). The unroll pragma keeps the accumulators in registers: GCC 12 at -O2 left the
 * loop over j rolled (nq 3 and 4) with them on the stack; clang unrolls it anyway. */
static inline __attribute__((always_inline)) void row_tile(const uint32_t* group, const int8_t* word, uint32_t b0,
                                                           uint32_t b1, size_t r, const uint8_t* xc, size_t ldx,
                                                           size_t col, size_t cols, const int nq,
                                                           const sparrow_qgemm_epilogue* e) {
  int32x4_t acc[16];
  for (int c = 0; c < 4 * nq; c++) acc[c] = vdupq_n_s32(0);
  for (uint32_t b = b0; b < b1; b++) {
    const uint8_t* x = xc + (size_t)group[b] * ldx * 4;
    /* The 4 weights twice: lanes 0-3 for smlal, 4-7 for smlal2. */
    const int16x8_t w = vmovl_s8(vreinterpret_s8_s32(vdup_n_s32(sparrow_qgemm_word(word + (size_t)b * 4))));
    const int16x4_t w4 = vget_low_s16(w);
#pragma GCC unroll 4
    for (int j = 0; j < nq; j++) {
      const uint8x16_t xv = vld1q_u8(x + 16 * j);                             /* columns 4j .. 4j + 3 */
      const int16x8_t x01 = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(xv))); /* columns 4j, 4j + 1 */
      const int16x8_t x23 = vreinterpretq_s16_u16(vmovl_high_u8(xv));         /* columns 4j + 2, 4j + 3 */
      acc[4 * j] = vmlal_s16(acc[4 * j], vget_low_s16(x01), w4);
      acc[4 * j + 1] = vmlal_high_s16(acc[4 * j + 1], x01, w);
      acc[4 * j + 2] = vmlal_s16(acc[4 * j + 2], vget_low_s16(x23), w4);
      acc[4 * j + 3] = vmlal_high_s16(acc[4 * j + 3], x23, w);
    }
  }
  int32_t s[16];
  for (int j = 0; j < nq; j++) vst1q_s32(s + 4 * j, sum4(acc[4 * j], acc[4 * j + 1], acc[4 * j + 2], acc[4 * j + 3]));
  sparrow_qgemm_store_row(e, r, col, s, cols);
}

void sparrow_qspmm_bsr1x4_u8s8_1x16__neon(const uint32_t* row_ptr, const uint32_t* group, const int8_t* word, size_t r0,
                                          size_t r1, const uint8_t* xp, size_t n, const sparrow_qgemm_epilogue* e) {
  const size_t ldx = sparrow_qgemm_ldx(n);
  for (size_t col = 0; col < n; col += 16) {
    const size_t cols = n - col < 16 ? n - col : 16;
    const uint8_t* xc = xp + col * 4;
    for (size_t r = r0; r < r1; r++) {
      const uint32_t b0 = row_ptr[r], b1 = row_ptr[r + 1];
      switch ((cols + 3) / 4) {
        case 4:
          row_tile(group, word, b0, b1, r, xc, ldx, col, cols, 4, e);
          break;
        case 3:
          row_tile(group, word, b0, b1, r, xc, ldx, col, cols, 3, e);
          break;
        case 2:
          row_tile(group, word, b0, b1, r, xc, ldx, col, cols, 2, e);
          break;
        default:
          row_tile(group, word, b0, b1, r, xc, ldx, col, cols, 1, e);
          break;
      }
    }
  }
}
#endif
