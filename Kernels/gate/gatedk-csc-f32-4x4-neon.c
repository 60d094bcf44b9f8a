/* Input-gated sparse K-major product (CSC), NEON: per kept input, its nonzeros four at a time
 * multiplied by the token's value in one vector, then added into the scattered output rows
 * (NEON has no scatter); the tail is scalar (gate.h). */
#if defined(__aarch64__)
#include <arm_neon.h>

#include "gate.h"

void sparrow_gatedk_csc_f32_4x4__neon(size_t rows, size_t n, size_t nk, const uint32_t* idx, const float* xv,
                                      const uint32_t* ptr, const uint32_t* out_rows, const float* vals, float* y,
                                      size_t y_stride) {
  (void)n;
  for (size_t j = 0; j < nk; j++) {
    const uint32_t k = idx[j];
    const uint32_t p0 = ptr[k], p1 = ptr[k + 1];
    for (size_t t = 0; t < rows; t++) {
      const float x = xv[j * rows + t];
      if (x == 0.0f) continue; /* skipped by this token (another kept it): adds nothing to finite weights */
      float* yt = (float*)((char*)y + t * y_stride);
      uint32_t p = p0;
      for (; p + 4 <= p1; p += 4) {
        float prod[4];
        vst1q_f32(prod, vmulq_n_f32(vld1q_f32(vals + p), x));
        yt[out_rows[p]] += prod[0];
        yt[out_rows[p + 1]] += prod[1];
        yt[out_rows[p + 2]] += prod[2];
        yt[out_rows[p + 3]] += prod[3];
      }
      for (; p < p1; p++) yt[out_rows[p]] += x * vals[p];
    }
  }
}
#endif
