/* Sparse int8 GEMM over 1x4 blocks (qspmm.h), scalar: one row, one column at a time. */
#include "qspmm.h"

void sparrow_qspmm_bsr1x4_u8s8_1x1__scalar(const uint32_t* row_ptr, const uint32_t* group, const int8_t* word,
                                           size_t r0, size_t r1, const uint8_t* xp, size_t n,
                                           const sparrow_qgemm_epilogue* e) {
  for (size_t r = r0; r < r1; r++)
    for (size_t col = 0; col < n; col++) {
      uint32_t acc = 0;
      for (uint32_t b = row_ptr[r]; b < row_ptr[r + 1]; b++) {
        const uint8_t* x = xp + ((size_t)group[b] * sparrow_qgemm_ldx(n) + col) * 4;
        const int8_t* w = word + (size_t)b * 4;
        for (size_t j = 0; j < 4; j++) acc += (uint32_t)((int32_t)x[j] * (int32_t)w[j]);
      }
      sparrow_qgemm_store1(e, r, col, (int32_t)acc);
    }
}
