/* Input-gated sparse K-major product (CSC of the layer's weight), portable C: per kept input,
 * its nonzeros scattered into every token's output row (gate.h). Work is the kept inputs'
 * nonzeros: the product of the gate's and the weight's sparsity. */
#include "gate.h"

void sparrow_gatedk_csc_f32_4x1__scalar(size_t rows, size_t n, size_t nk, const uint32_t* idx, const float* xv,
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
      for (uint32_t p = p0; p < p1; p++) yt[out_rows[p]] += x * vals[p];
    }
  }
}
