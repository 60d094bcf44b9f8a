/* Sparse int8 GEMM over 1x4 blocks (qspmm.h), NEON with the dot-product extension (sdot, Armv8.2
 * FEAT_DotProd; chosen at run time from HWCAP_ASIMDDP): one row x up to 16 columns per step, the
 * block's 4 weights in every lane and one sdot per 4 columns. As the dense neondot kernel: sdot
 * multiplies signed by signed bytes, so X's uint8 values are moved to int8 (x ^ 0x80 = x - 128)
 * on load and the difference added back once per row: sum (x - 128) w + 128 sum w = sum x w
 * (row_sums holds sum w over the whole row; the blocks skipped are all zero, so they add nothing
 * to either side).
 *
 * As the AVX-512 VNNI kernel: a tile of 16 columns outside, the rows inside, so every row reads
 * the same K x 16 bytes of X from L1; even and odd blocks of a row go to two sets of accumulators,
 * added at the end (two dependent sdot chains per 4 columns instead of one). The last tile
 * (n % 16 columns) computes only the groups of 4 columns it needs; a group's pad columns are read
 * (packed X's rows are sparrow_qgemm_ldx(n) columns long) but never stored. */
#if defined(__aarch64__)
#include <arm_neon.h>

#include "qspmm.h"

#include "../qgemm/neondot.h"

/* The 16 bytes at x (4 columns x 4 k) as int8: x - 128. */
T static inline int8x16_t load_flipped(const uint8_t* x, uint8x16_t flip) {
  return vreinterpretq_s8_u8(veorq_u8(vld1q_u8(x), flip));
}

/* A block's 4 weights in each 32-bit lane. */
T static inline int8x16_t weights(const int8_t* w) { return vreinterpretq_s8_s32(vdupq_n_s32(sparrow_qgemm_word(w))); }

/* Row r over the `cols` columns from col (nq = ceil(cols / 4) groups of 4 columns, a constant
 * once inlined). The unroll pragma keeps the accumulators in registers: GCC 12 at -O2 left the
 * loop over j rolled (nq 3 and 4) with them on the stack; clang unrolls it anyway. */
T static inline __attribute__((always_inline)) void row_tile(const uint32_t* group, const int8_t* word, uint32_t b0,
                                                             uint32_t b1, size_t r, const uint8_t* xc, size_t ldx,
                                                             size_t col, size_t cols, const int nq,
                                                             const sparrow_qgemm_epilogue* e) {
  const uint8x16_t flip = vdupq_n_u8(0x80);
  int32x4_t a[4], c[4];
  for (int j = 0; j < nq; j++) a[j] = c[j] = vdupq_n_s32(0);
  uint32_t b = b0;
  for (; b + 2 <= b1; b += 2) {
    const int8x16_t w0 = weights(word + (size_t)b * 4), w1 = weights(word + (size_t)b * 4 + 4);
    const uint8_t* x0 = xc + (size_t)group[b] * ldx * 4;
    const uint8_t* x1 = xc + (size_t)group[b + 1] * ldx * 4;
#pragma GCC unroll 4
    for (int j = 0; j < nq; j++) a[j] = vdotq_s32(a[j], load_flipped(x0 + 16 * j, flip), w0);
#pragma GCC unroll 4
    for (int j = 0; j < nq; j++) c[j] = vdotq_s32(c[j], load_flipped(x1 + 16 * j, flip), w1);
  }
  if (b < b1) {
    const int8x16_t w0 = weights(word + (size_t)b * 4);
    const uint8_t* x0 = xc + (size_t)group[b] * ldx * 4;
#pragma GCC unroll 4
    for (int j = 0; j < nq; j++) a[j] = vdotq_s32(a[j], load_flipped(x0 + 16 * j, flip), w0);
  }
  const int32x4_t fix = vdupq_n_s32((int32_t)(128u * (uint32_t)e->row_sums[r]));
  int32_t s[16];
  for (int j = 0; j < nq; j++) vst1q_s32(s + 4 * j, vaddq_s32(vaddq_s32(a[j], c[j]), fix));
  sparrow_qgemm_store_row(e, r, col, s, cols);
}

T void sparrow_qspmm_bsr1x4_u8s8_1x16__neondot(const uint32_t* row_ptr, const uint32_t* group, const int8_t* word,
                                               size_t r0, size_t r1, const uint8_t* xp, size_t n,
                                               const sparrow_qgemm_epilogue* e) {
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
