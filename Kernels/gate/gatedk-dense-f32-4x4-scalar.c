/* Input-gated dense K-major product, portable C: kept weight rows taken four at a time, each
 * output added once per group (gate.h). */
#include "gate.h"

#define ROW(j) ((const float*)((const char*)w + (size_t)idx[j] * w_stride))

void sparrow_gatedk_dense_f32_4x4__scalar(size_t rows, size_t n, size_t nk, const uint32_t* idx, const float* xv,
                                          const float* w, size_t w_stride, float* y, size_t y_stride) {
  size_t j = 0;
  for (; j + 4 <= nk; j += 4) {
    const float *w0 = ROW(j), *w1 = ROW(j + 1), *w2 = ROW(j + 2), *w3 = ROW(j + 3);
    for (size_t t = 0; t < rows; t++) {
      const float x0 = xv[j * rows + t], x1 = xv[(j + 1) * rows + t];
      const float x2 = xv[(j + 2) * rows + t], x3 = xv[(j + 3) * rows + t];
      float* yt = (float*)((char*)y + t * y_stride);
      for (size_t o = 0; o < n; o++) yt[o] += x0 * w0[o] + x1 * w1[o] + x2 * w2[o] + x3 * w3[o];
    }
  }
  for (; j < nk; j++) {
    const float* w0 = ROW(j);
    for (size_t t = 0; t < rows; t++) {
      const float x0 = xv[j * rows + t];
      float* yt = (float*)((char*)y + t * y_stride);
      for (size_t o = 0; o < n; o++) yt[o] += x0 * w0[o];
    }
  }
}
