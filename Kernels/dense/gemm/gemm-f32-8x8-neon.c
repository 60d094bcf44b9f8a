/* Packed dense GEMM, NEON, 8 x 8 register block (layout: gemm.h): per k, two 4-float loads of
 * the X row and of the panel's W column, sixteen FMAs by lane. The last < 8 columns (all of
 * N = 1) run the matrix-vector path: two FMAs per k over the 8-row panel, W streamed once. */
#if defined(__aarch64__)
#include <arm_neon.h>

#include "gemm.h"

#define MR 8

static inline float32x4_t clamp4(float32x4_t v, float b, float32x4_t lo, float32x4_t hi) {
  return vminq_f32(vmaxq_f32(vaddq_f32(v, vdupq_n_f32(b)), lo), hi);
}

/* Window blocks (gemm.h): the 8 x 8 block from the packed panel (8 columns, K slices of 256). */
#define WKC 256
static void window_block(size_t kc, const float* wp, const float* xp, size_t cols, float* y, size_t ys, size_t rows,
                         const float* bias, float lo, float hi, int first, int last) {
  float32x4_t c[16];
  for (int i = 0; i < 16; i++) c[i] = vdupq_n_f32(0.0f);
  for (size_t k = 0; k < kc; k++) {
    const float32x4_t x0 = vld1q_f32(xp + k * 8), x1 = vld1q_f32(xp + k * 8 + 4);
    const float32x4_t w0 = vld1q_f32(wp + k * MR), w1 = vld1q_f32(wp + k * MR + 4);
    c[0] = vfmaq_laneq_f32(c[0], x0, w0, 0);
    c[1] = vfmaq_laneq_f32(c[1], x1, w0, 0);
    c[2] = vfmaq_laneq_f32(c[2], x0, w0, 1);
    c[3] = vfmaq_laneq_f32(c[3], x1, w0, 1);
    c[4] = vfmaq_laneq_f32(c[4], x0, w0, 2);
    c[5] = vfmaq_laneq_f32(c[5], x1, w0, 2);
    c[6] = vfmaq_laneq_f32(c[6], x0, w0, 3);
    c[7] = vfmaq_laneq_f32(c[7], x1, w0, 3);
    c[8] = vfmaq_laneq_f32(c[8], x0, w1, 0);
    c[9] = vfmaq_laneq_f32(c[9], x1, w1, 0);
    c[10] = vfmaq_laneq_f32(c[10], x0, w1, 1);
    c[11] = vfmaq_laneq_f32(c[11], x1, w1, 1);
    c[12] = vfmaq_laneq_f32(c[12], x0, w1, 2);
    c[13] = vfmaq_laneq_f32(c[13], x1, w1, 2);
    c[14] = vfmaq_laneq_f32(c[14], x0, w1, 3);
    c[15] = vfmaq_laneq_f32(c[15], x1, w1, 3);
  }
  for (size_t i = 0; i < rows; i++) {
    float* yr = y + i * ys;
    float v[8];
    vst1q_f32(v, c[i * 2]);
    vst1q_f32(v + 4, c[i * 2 + 1]);
    const float b = bias != NULL ? bias[i] : 0.0f;
    for (size_t j = 0; j < cols; j++) {
      const float s = first ? v[j] : yr[j] + v[j];
      yr[j] = last ? sparrow_clampf(s + b, lo, hi) : s;
    }
  }
}

void sparrow_gemm_f32_8x8__neon(const sparrow_matrix* w, const uint32_t* units, size_t u0, size_t u1,
                                const sparrow_ukernel_args* a) {
  const size_t K = w->k, n = a->n, xs = a->x_stride / sizeof(float), ys = a->y_stride / sizeof(float);
  const uint8_t* mask = a->k_mask;
  if (a->win != NULL) {
    float xp[WKC * 8] __attribute__((aligned(16)));
    sparrow_gemm_window(w, units, u0, u1, a, MR, 8, WKC, 64, xp, window_block);
    return;
  }
  const float32x4_t lo = vdupq_n_f32(a->lo), hi = vdupq_n_f32(a->hi);
  size_t j0 = 0;
  for (; j0 + 8 <= n; j0 += 8) {
    for (size_t u = u0; u < u1; u++) {
      const size_t p = sparrow_gemm_panel(units, u);
      const float* wp = w->u.gemm.w + p * K * MR;
      float32x4_t c[16];
      for (int i = 0; i < 16; i++) c[i] = vdupq_n_f32(0.0f);
      for (size_t k = 0; k < K; k++) {
        if (mask != NULL && !mask[k]) continue;
        const float* xr = a->x + k * xs + j0;
        const float32x4_t x0 = vld1q_f32(xr), x1 = vld1q_f32(xr + 4);
        const float32x4_t w0 = vld1q_f32(wp + k * MR), w1 = vld1q_f32(wp + k * MR + 4);
        c[0] = vfmaq_laneq_f32(c[0], x0, w0, 0);
        c[1] = vfmaq_laneq_f32(c[1], x1, w0, 0);
        c[2] = vfmaq_laneq_f32(c[2], x0, w0, 1);
        c[3] = vfmaq_laneq_f32(c[3], x1, w0, 1);
        c[4] = vfmaq_laneq_f32(c[4], x0, w0, 2);
        c[5] = vfmaq_laneq_f32(c[5], x1, w0, 2);
        c[6] = vfmaq_laneq_f32(c[6], x0, w0, 3);
        c[7] = vfmaq_laneq_f32(c[7], x1, w0, 3);
        c[8] = vfmaq_laneq_f32(c[8], x0, w1, 0);
        c[9] = vfmaq_laneq_f32(c[9], x1, w1, 0);
        c[10] = vfmaq_laneq_f32(c[10], x0, w1, 1);
        c[11] = vfmaq_laneq_f32(c[11], x1, w1, 1);
        c[12] = vfmaq_laneq_f32(c[12], x0, w1, 2);
        c[13] = vfmaq_laneq_f32(c[13], x1, w1, 2);
        c[14] = vfmaq_laneq_f32(c[14], x0, w1, 3);
        c[15] = vfmaq_laneq_f32(c[15], x1, w1, 3);
      }
      const size_t rows = sparrow_gemm_rows(w->m, p, MR);
      for (size_t i = 0; i < rows; i++) {
        const size_t r = p * MR + i;
        const float b = a->bias != NULL ? a->bias[r] : 0.0f;
        float* y = a->y + r * ys + j0;
        vst1q_f32(y, clamp4(c[i * 2], b, lo, hi));
        vst1q_f32(y + 4, clamp4(c[i * 2 + 1], b, lo, hi));
      }
    }
  }
  for (; j0 < n; j0++) {
    for (size_t u = u0; u < u1; u++) {
      const size_t p = sparrow_gemm_panel(units, u);
      const float* wp = w->u.gemm.w + p * K * MR;
      const float* x = a->x + j0;
      float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, b0 = a0, b1 = a0;
      size_t k = 0;
      if (mask == NULL)
        for (; k + 2 <= K; k += 2) {
          const float x0 = x[k * xs], x1 = x[(k + 1) * xs];
          a0 = vfmaq_n_f32(a0, vld1q_f32(wp + k * MR), x0);
          a1 = vfmaq_n_f32(a1, vld1q_f32(wp + k * MR + 4), x0);
          b0 = vfmaq_n_f32(b0, vld1q_f32(wp + (k + 1) * MR), x1);
          b1 = vfmaq_n_f32(b1, vld1q_f32(wp + (k + 1) * MR + 4), x1);
        }
      for (; k < K; k++) {
        if (mask != NULL && !mask[k]) continue;
        a0 = vfmaq_n_f32(a0, vld1q_f32(wp + k * MR), x[k * xs]);
        a1 = vfmaq_n_f32(a1, vld1q_f32(wp + k * MR + 4), x[k * xs]);
      }
      float out[8];
      vst1q_f32(out, vaddq_f32(a0, b0));
      vst1q_f32(out + 4, vaddq_f32(a1, b1));
      const size_t rows = sparrow_gemm_rows(w->m, p, MR);
      for (size_t i = 0; i < rows; i++) {
        const size_t r = p * MR + i;
        const float b = a->bias != NULL ? a->bias[r] : 0.0f;
        a->y[r * ys + j0] = sparrow_clampf(out[i] + b, a->lo, a->hi);
      }
    }
  }
}
#endif
