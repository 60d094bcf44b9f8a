/* Gathered GEMM, NEON (gate.h, kind ROWS): 4 listed rows x 16 columns, 16 accumulators; per
 * kept column four X loads and one W value per row, by lane. Fewer than 4 rows repeat row 0 and
 * drop it; the last partial 4-column group goes through a stack copy. */
#if defined(__aarch64__)
#include <arm_neon.h>

#include "gate.h"

void sparrow_gatherk_rows_f32_4x16__neon(size_t rows, const float* const* w, size_t runs, const uint32_t* run_k,
                                         const uint32_t* run_len, const float* xp, size_t cols, float* const* y,
                                         const float* bias, const float* scale, float lo, float hi, int first,
                                         int last) {
  const float* wr[4] = {w[0], rows > 1 ? w[1] : w[0], rows > 2 ? w[2] : w[0], rows > 3 ? w[3] : w[0]};
  float32x4_t acc[4][4];
  for (size_t i = 0; i < 4; i++)
    for (size_t v = 0; v < 4; v++) acc[i][v] = vdupq_n_f32(0.0f);
  const float* xr = xp;
  for (size_t q = 0; q < runs; q++) {
    const size_t k0 = run_k[q], len = run_len[q];
    for (size_t t = 0; t < len; t++, xr += SPARROW_GATHER_NR) {
      const float32x4_t x0 = vld1q_f32(xr), x1 = vld1q_f32(xr + 4), x2 = vld1q_f32(xr + 8), x3 = vld1q_f32(xr + 12);
      float32x4_t wv = vdupq_n_f32(wr[0][k0 + t]);
      wv = vsetq_lane_f32(wr[1][k0 + t], wv, 1);
      wv = vsetq_lane_f32(wr[2][k0 + t], wv, 2);
      wv = vsetq_lane_f32(wr[3][k0 + t], wv, 3);
      acc[0][0] = vfmaq_laneq_f32(acc[0][0], x0, wv, 0), acc[0][1] = vfmaq_laneq_f32(acc[0][1], x1, wv, 0);
      acc[0][2] = vfmaq_laneq_f32(acc[0][2], x2, wv, 0), acc[0][3] = vfmaq_laneq_f32(acc[0][3], x3, wv, 0);
      acc[1][0] = vfmaq_laneq_f32(acc[1][0], x0, wv, 1), acc[1][1] = vfmaq_laneq_f32(acc[1][1], x1, wv, 1);
      acc[1][2] = vfmaq_laneq_f32(acc[1][2], x2, wv, 1), acc[1][3] = vfmaq_laneq_f32(acc[1][3], x3, wv, 1);
      acc[2][0] = vfmaq_laneq_f32(acc[2][0], x0, wv, 2), acc[2][1] = vfmaq_laneq_f32(acc[2][1], x1, wv, 2);
      acc[2][2] = vfmaq_laneq_f32(acc[2][2], x2, wv, 2), acc[2][3] = vfmaq_laneq_f32(acc[2][3], x3, wv, 2);
      acc[3][0] = vfmaq_laneq_f32(acc[3][0], x0, wv, 3), acc[3][1] = vfmaq_laneq_f32(acc[3][1], x1, wv, 3);
      acc[3][2] = vfmaq_laneq_f32(acc[3][2], x2, wv, 3), acc[3][3] = vfmaq_laneq_f32(acc[3][3], x3, wv, 3);
    }
  }
  const float32x4_t vlo = vdupq_n_f32(lo), vhi = vdupq_n_f32(hi);
  for (size_t i = 0; i < rows; i++) {
    float* yr = y[i];
    const float32x4_t b = vdupq_n_f32(bias != NULL ? bias[i] : 0.0f);
    const float32x4_t s = vdupq_n_f32(scale != NULL ? scale[i] : 1.0f);
    for (size_t v = 0; v * 4 < cols; v++) {
      const size_t n = cols - v * 4 < 4 ? cols - v * 4 : 4;
      float tmp[4] = {0};
      for (size_t j = 0; j < n; j++) tmp[j] = yr[v * 4 + j];
      float32x4_t r = first ? acc[i][v] : vaddq_f32(acc[i][v], vld1q_f32(tmp));
      if (last) {
        r = vminq_f32(vmaxq_f32(vaddq_f32(r, b), vlo), vhi);
        if (scale != NULL) r = vmulq_f32(r, s);
      }
      vst1q_f32(tmp, r);
      for (size_t j = 0; j < n; j++) yr[v * 4 + j] = tmp[j];
    }
  }
}
#endif
