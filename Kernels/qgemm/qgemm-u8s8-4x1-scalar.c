/* int8 GEMM, scalar, 4 rows x 1 column per step (layouts: qgemm.h): the reference the SIMD
 * kernels share their layouts and epilogue with, and the path of CPUs without them. */
#include "qgemm.h"

#define MR 4

void sparrow_qgemm_u8s8_4x1__scalar(const int8_t* wp, size_t kq, size_t m, size_t p0, size_t p1, const uint8_t* xp,
                                    size_t n, const sparrow_qgemm_epilogue* e) {
  for (size_t p = p0; p < p1; p++) {
    const int8_t* w = wp + p * kq * MR * 4;
    const size_t rows = m - p * MR < MR ? m - p * MR : MR;
    for (size_t col = 0; col < n; col++) {
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
