/* Packing for the sparse int8 kernels (qspmm.h). */
#include "qspmm.h"

static int8_t at(const int8_t* w, size_t r, size_t k, size_t kk, ptrdiff_t m_stride, ptrdiff_t k_stride) {
  return kk < k ? w[(ptrdiff_t)r * m_stride + (ptrdiff_t)kk * k_stride] : 0;
}

size_t sparrow_qspmm_blocks(const int8_t* w, size_t m, size_t k, ptrdiff_t m_stride, ptrdiff_t k_stride) {
  size_t blocks = 0;
  for (size_t r = 0; r < m; r++)
    for (size_t q = 0; q < (k + 3) / 4; q++) {
      int any = 0;
      for (size_t j = 0; j < 4; j++) any |= at(w, r, k, q * 4 + j, m_stride, k_stride) != 0;
      blocks += (size_t)any;
    }
  return blocks;
}

void sparrow_qspmm_pack_w(const int8_t* w, size_t m, size_t k, ptrdiff_t m_stride, ptrdiff_t k_stride,
                          uint32_t* row_ptr, uint32_t* group, int8_t* word, int32_t* row_sums) {
  uint32_t b = 0;
  for (size_t r = 0; r < m; r++) {
    row_ptr[r] = b;
    int32_t sum = 0;
    for (size_t q = 0; q < (k + 3) / 4; q++) {
      int8_t v[4];
      int any = 0;
      for (size_t j = 0; j < 4; j++) {
        v[j] = at(w, r, k, q * 4 + j, m_stride, k_stride);
        any |= v[j] != 0;
        sum += v[j];
      }
      if (!any) continue;
      group[b] = (uint32_t)q;
      for (size_t j = 0; j < 4; j++) word[(size_t)b * 4 + j] = v[j];
      b++;
    }
    row_sums[r] = sum;
  }
  row_ptr[m] = b;
}
