/* Direct int8 convolution, scalar (layouts: qconv.h): per output channel and position, the sum
 * over taps and channel groups of 4 byte products, then the GEMM's scalar epilogue. The
 * definition the SIMD kernels are tested against (besides the plain integer loop). */
#include "qconv.h"

#define MR 4

void sparrow_qconv_u8s8_4x1__scalar(const int8_t* wp, size_t m, size_t p0, size_t p1, const sparrow_qconv_geometry* g,
                                    size_t n0, size_t n1, const sparrow_qgemm_epilogue* e) {
  const size_t kq = g->taps * g->cq;
  for (size_t p = p0; p < p1; p++) {
    const int8_t* w = wp + p * kq * MR * 4;
    const size_t rows = m - p * MR < MR ? m - p * MR : MR;
    for (size_t n = n0; n < n1; n++) {
      const uint8_t* x = g->planes + sparrow_qconv_word(g, n) * 4;
      int32_t acc[MR] = {0};
      for (size_t t = 0; t < g->taps; t++)
        for (size_t c = 0; c < g->cq; c++) {
          const uint8_t* xw = x + (g->tap_words[t] + c * g->group_words) * 4;
          const int8_t* ww = w + (t * g->cq + c) * MR * 4;
          for (size_t i = 0; i < rows; i++)
            for (size_t j = 0; j < 4; j++)
              acc[i] = (int32_t)((uint32_t)acc[i] + (uint32_t)((int32_t)xw[j] * (int32_t)ww[i * 4 + j]));
        }
      for (size_t i = 0; i < rows; i++) sparrow_qgemm_store1(e, p * MR + i, n, acc[i]);
    }
  }
}
