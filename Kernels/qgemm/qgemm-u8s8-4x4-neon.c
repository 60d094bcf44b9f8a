/* int8 GEMM, NEON without the dot-product extension, 4 rows x 4 columns per step (layouts:
 * qgemm.h): the 16 bytes of 4 columns x 4 k are widened to int16 (ushll; values <= 255 stay
 * positive), each row's 4 weights widened to int16 and repeated, and smlal / smlal2 add the
 * products into one int32x4 per (row, column) whose lanes are the 4 k of the group; pairwise
 * adds give the sums after the last group. */
#if defined(__aarch64__)
#include <arm_neon.h>

#include "qgemm.h"

#define MR 4

/* Lanes of a, b, c, d summed: {sum a, sum b, sum c, sum d}. */
static inline int32x4_t sum4(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d) {
  return vpaddq_s32(vpaddq_s32(a, b), vpaddq_s32(c, d));
}

void sparrow_qgemm_u8s8_4x4__neon(const int8_t* wp, size_t kq, size_t m, size_t p0, size_t p1, const uint8_t* xp,
                                  size_t n, const sparrow_qgemm_epilogue* e) {
  const size_t n4 = n & ~(size_t)3;
  for (size_t p = p0; p < p1; p++) {
    const int8_t* w = wp + p * kq * MR * 4;
    const size_t rows = m - p * MR < MR ? m - p * MR : MR;
    for (size_t col = 0; col < n4; col += 4) {
      int32x4_t acc[MR][4];
      for (size_t i = 0; i < MR; i++)
        for (size_t c = 0; c < 4; c++) acc[i][c] = vdupq_n_s32(0);
      const uint8_t* x = xp + col * 4;
      const int8_t* wq = w;
      for (size_t q = 0; q < kq; q++, x += sparrow_qgemm_ldx(n) * 4, wq += MR * 4) {
        const uint8x16_t xv = vld1q_u8(x);
        const int16x8_t x01 = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(xv))); /* columns 0, 1 */
        const int16x8_t x23 = vreinterpretq_s16_u16(vmovl_high_u8(xv));         /* columns 2, 3 */
        const int16x8_t w16 = vmovl_s8(vld1_s8(wq));                            /* rows 0, 1 */
        const int16x8_t w16b = vmovl_s8(vld1_s8(wq + 8));                       /* rows 2, 3 */
        const int16x4_t wr[MR] = {vget_low_s16(w16), vget_high_s16(w16), vget_low_s16(w16b), vget_high_s16(w16b)};
        for (size_t i = 0; i < MR; i++) {
          acc[i][0] = vmlal_s16(acc[i][0], vget_low_s16(x01), wr[i]);
          acc[i][1] = vmlal_s16(acc[i][1], vget_high_s16(x01), wr[i]);
          acc[i][2] = vmlal_s16(acc[i][2], vget_low_s16(x23), wr[i]);
          acc[i][3] = vmlal_s16(acc[i][3], vget_high_s16(x23), wr[i]);
        }
      }
      for (size_t i = 0; i < rows; i++) {
        int32_t s[4];
        vst1q_s32(s, sum4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]));
        sparrow_qgemm_store_row(e, p * MR + i, col, s, 4);
      }
    }
    for (size_t col = n4; col < n; col++) {
      uint32_t acc[MR] = {0, 0, 0, 0};
      for (size_t q = 0; q < kq; q++) {
        const uint8_t* x = xp + (q * sparrow_qgemm_ldx(n) + col) * 4;
        const int8_t* wq = w + q * MR * 4;
        for (size_t i = 0; i < MR; i++)
          for (size_t j = 0; j < 4; j++) acc[i] += (uint32_t)((int32_t)x[j] * (int32_t)wq[i * 4 + j]);
      }
      for (size_t i = 0; i < rows; i++) sparrow_qgemm_store1(e, p * MR + i, col, (int32_t)acc[i]);
    }
  }
}
#endif
