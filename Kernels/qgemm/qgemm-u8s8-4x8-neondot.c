/* int8 GEMM, NEON with the dot-product extension (sdot, Armv8.2 FEAT_DotProd; chosen at run time
 * from HWCAP_ASIMDDP), 4 rows x 8 columns per step (layouts: qgemm.h). sdot multiplies signed by
 * signed bytes, so X's uint8 values are moved to int8 (x ^ 0x80 = x - 128) on load and the
 * difference added back once per row: sum (x - 128) w + 128 sum w = sum x w. */
#if defined(__aarch64__)
#include <arm_neon.h>

#include "qgemm.h"

#include "neondot.h"
#define MR 4

T void sparrow_qgemm_u8s8_4x8__neondot(const int8_t* wp, size_t kq, size_t m, size_t p0, size_t p1, const uint8_t* xp,
                                       size_t n, const sparrow_qgemm_epilogue* e) {
  const size_t n8 = n & ~(size_t)7;
  const uint8x16_t flip = vdupq_n_u8(0x80);
  for (size_t p = p0; p < p1; p++) {
    const int8_t* w = wp + p * kq * MR * 4;
    const size_t rows = m - p * MR < MR ? m - p * MR : MR;
    for (size_t col = 0; col < n8; col += 8) {
      int32x4_t a[MR], b[MR];
      for (size_t i = 0; i < MR; i++) a[i] = b[i] = vdupq_n_s32(0);
      const uint8_t* x = xp + col * 4;
      const int8_t* wq = w;
      for (size_t q = 0; q < kq; q++, x += sparrow_qgemm_ldx(n) * 4, wq += MR * 4) {
        const int8x16_t x0 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(x), flip));
        const int8x16_t x1 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(x + 16), flip));
        const int8x16_t wv = vld1q_s8(wq); /* the 4 rows' 4 weights */
        a[0] = vdotq_laneq_s32(a[0], x0, wv, 0);
        b[0] = vdotq_laneq_s32(b[0], x1, wv, 0);
        a[1] = vdotq_laneq_s32(a[1], x0, wv, 1);
        b[1] = vdotq_laneq_s32(b[1], x1, wv, 1);
        a[2] = vdotq_laneq_s32(a[2], x0, wv, 2);
        b[2] = vdotq_laneq_s32(b[2], x1, wv, 2);
        a[3] = vdotq_laneq_s32(a[3], x0, wv, 3);
        b[3] = vdotq_laneq_s32(b[3], x1, wv, 3);
      }
      for (size_t i = 0; i < rows; i++) {
        const int32x4_t fix = vdupq_n_s32((int32_t)(128u * (uint32_t)e->row_sums[p * MR + i]));
        int32_t s[8];
        vst1q_s32(s, vaddq_s32(a[i], fix));
        vst1q_s32(s + 4, vaddq_s32(b[i], fix));
        sparrow_qgemm_store_row(e, p * MR + i, col, s, 8);
      }
    }
    for (size_t col = n8; col < n; col++) {
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
