/* Dense direct convolution, NEON: 6 output channels x 16 pixels per block (dconv.h), 24
 * accumulators; per k four 4-float loads of the input run and the six weights by lane. The
 * last pixels of a row (fewer than 16) run 6 x 4 blocks, then a scalar rest. */
#if defined(__aarch64__)
#include <arm_neon.h>

#include "dconv.h"

#include "../../common/common.h"

static inline float32x4_t clamp4(float32x4_t v, float b, float32x4_t lo, float32x4_t hi) {
  return vminq_f32(vmaxq_f32(vaddq_f32(v, vdupq_n_f32(b)), lo), hi);
}

void sparrow_dconv_f32_6x16__neon(size_t K, const float* wp, const size_t* koff, const float* row, size_t wo,
                                  size_t rows, const float* bias, float lo, float hi, float* y, size_t y_plane,
                                  int first, int last) {
  const float32x4_t vlo = vdupq_n_f32(lo), vhi = vdupq_n_f32(hi);
  size_t ox = 0;
  for (; ox + 16 <= wo; ox += 16) {
    float32x4_t a[6][4];
    for (size_t i = 0; i < 6; i++)
      for (size_t v = 0; v < 4; v++)
        a[i][v] = !first && i < rows ? vld1q_f32(y + i * y_plane + ox + 4 * v) : vdupq_n_f32(0.0f);
    for (size_t k = 0; k < K; k++) {
      const float* x = row + koff[k] + ox;
      const float* w = wp + k * SPARROW_DCONV_MR;
      const float32x4_t x0 = vld1q_f32(x), x1 = vld1q_f32(x + 4), x2 = vld1q_f32(x + 8), x3 = vld1q_f32(x + 12);
      const float32x4_t w03 = vld1q_f32(w);
      const float32x2_t w45 = vld1_f32(w + 4);
      a[0][0] = vfmaq_laneq_f32(a[0][0], x0, w03, 0), a[0][1] = vfmaq_laneq_f32(a[0][1], x1, w03, 0);
      a[0][2] = vfmaq_laneq_f32(a[0][2], x2, w03, 0), a[0][3] = vfmaq_laneq_f32(a[0][3], x3, w03, 0);
      a[1][0] = vfmaq_laneq_f32(a[1][0], x0, w03, 1), a[1][1] = vfmaq_laneq_f32(a[1][1], x1, w03, 1);
      a[1][2] = vfmaq_laneq_f32(a[1][2], x2, w03, 1), a[1][3] = vfmaq_laneq_f32(a[1][3], x3, w03, 1);
      a[2][0] = vfmaq_laneq_f32(a[2][0], x0, w03, 2), a[2][1] = vfmaq_laneq_f32(a[2][1], x1, w03, 2);
      a[2][2] = vfmaq_laneq_f32(a[2][2], x2, w03, 2), a[2][3] = vfmaq_laneq_f32(a[2][3], x3, w03, 2);
      a[3][0] = vfmaq_laneq_f32(a[3][0], x0, w03, 3), a[3][1] = vfmaq_laneq_f32(a[3][1], x1, w03, 3);
      a[3][2] = vfmaq_laneq_f32(a[3][2], x2, w03, 3), a[3][3] = vfmaq_laneq_f32(a[3][3], x3, w03, 3);
      a[4][0] = vfmaq_lane_f32(a[4][0], x0, w45, 0), a[4][1] = vfmaq_lane_f32(a[4][1], x1, w45, 0);
      a[4][2] = vfmaq_lane_f32(a[4][2], x2, w45, 0), a[4][3] = vfmaq_lane_f32(a[4][3], x3, w45, 0);
      a[5][0] = vfmaq_lane_f32(a[5][0], x0, w45, 1), a[5][1] = vfmaq_lane_f32(a[5][1], x1, w45, 1);
      a[5][2] = vfmaq_lane_f32(a[5][2], x2, w45, 1), a[5][3] = vfmaq_lane_f32(a[5][3], x3, w45, 1);
    }
    for (size_t i = 0; i < rows; i++) {
      const float b = bias != NULL ? bias[i] : 0.0f;
      for (size_t v = 0; v < 4; v++)
        vst1q_f32(y + i * y_plane + ox + 4 * v, last ? clamp4(a[i][v], b, vlo, vhi) : a[i][v]);
    }
  }
  for (; ox + 4 <= wo; ox += 4) {
    float32x4_t a[6];
    for (size_t i = 0; i < 6; i++) a[i] = !first && i < rows ? vld1q_f32(y + i * y_plane + ox) : vdupq_n_f32(0.0f);
    for (size_t k = 0; k < K; k++) {
      const float32x4_t x0 = vld1q_f32(row + koff[k] + ox);
      const float* w = wp + k * SPARROW_DCONV_MR;
      for (size_t i = 0; i < 6; i++) a[i] = vfmaq_n_f32(a[i], x0, w[i]);
    }
    for (size_t i = 0; i < rows; i++)
      vst1q_f32(y + i * y_plane + ox, last ? clamp4(a[i], bias != NULL ? bias[i] : 0.0f, vlo, vhi) : a[i]);
  }
  for (; ox < wo; ox++) {
    float a[6] = {0};
    if (!first)
      for (size_t i = 0; i < rows; i++) a[i] = y[i * y_plane + ox];
    for (size_t k = 0; k < K; k++) {
      const float x = row[koff[k] + ox];
      const float* w = wp + k * SPARROW_DCONV_MR;
      for (size_t i = 0; i < 6; i++) a[i] += w[i] * x;
    }
    for (size_t i = 0; i < rows; i++)
      y[i * y_plane + ox] = last ? sparrow_clampf(a[i] + (bias != NULL ? bias[i] : 0.0f), lo, hi) : a[i];
  }
}
#endif
