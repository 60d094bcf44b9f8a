/* Input-gated dense K-major product, NEON: kept weight rows four at a time; per 4 outputs the
 * four rows' vectors are loaded once and added into every token's output; the output tail is
 * scalar (gate.h). */
#if defined(__aarch64__)
#include <arm_neon.h>

#include "gate.h"

#define ROW(j) ((const float*)((const char*)w + (size_t)idx[j] * w_stride))

void sparrow_gatedk_dense_f32_4x4__neon(size_t rows, size_t n, size_t nk, const uint32_t* idx, const float* xv,
                                        const float* w, size_t w_stride, float* y, size_t y_stride) {
  for (size_t j = 0; j < nk; j += 4) {
    const size_t g = nk - j < 4 ? nk - j : 4;
    /* A short last group repeats its first row with a zero factor: one loop for every group. */
    const float* wr[4];
    float xs[4][4];
    for (size_t q = 0; q < 4; q++) {
      wr[q] = ROW(j + (q < g ? q : 0));
      for (size_t t = 0; t < rows; t++) xs[t][q] = q < g ? xv[(j + q) * rows + t] : 0.0f;
    }
    size_t o = 0;
    for (; o + 4 <= n; o += 4) {
      const float32x4_t v0 = vld1q_f32(wr[0] + o), v1 = vld1q_f32(wr[1] + o);
      const float32x4_t v2 = vld1q_f32(wr[2] + o), v3 = vld1q_f32(wr[3] + o);
      for (size_t t = 0; t < rows; t++) {
        float* yt = (float*)((char*)y + t * y_stride) + o;
        float32x4_t a = vfmaq_n_f32(vld1q_f32(yt), v0, xs[t][0]);
        a = vfmaq_n_f32(a, v1, xs[t][1]);
        a = vfmaq_n_f32(a, v2, xs[t][2]);
        a = vfmaq_n_f32(a, v3, xs[t][3]);
        vst1q_f32(yt, a);
      }
    }
    for (; o < n; o++) {
      for (size_t t = 0; t < rows; t++) {
        float* yt = (float*)((char*)y + t * y_stride);
        yt[o] += xs[t][0] * wr[0][o] + xs[t][1] * wr[1][o] + xs[t][2] * wr[2][o] + xs[t][3] * wr[3][o];
      }
    }
  }
}
#endif
