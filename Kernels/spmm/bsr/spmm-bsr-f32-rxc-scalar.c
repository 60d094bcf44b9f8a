/* BSR x dense, portable scalar, any block shape: one block row at a time, 4 columns per pass. */
#include "../../pack/formats.h"

#define BSR_MAX_R 16

void sparrow_spmm_bsr_f32_rxc__scalar(const sparrow_matrix* w, const uint32_t* units, size_t u0, size_t u1,
                                      const sparrow_ukernel_args* a) {
  const sparrow_bsr* b = &w->u.bsr;
  const size_t R = b->r, C = b->c, M = w->m, K = w->k;
  for (size_t u = u0; u < u1; u++) {
    const size_t br = units != NULL ? units[u] : u;
    const size_t rows = M - br * R < R ? M - br * R : R;
    for (size_t j = 0; j < a->n; j += 4) {
      const size_t nb = a->n - j < 4 ? a->n - j : 4;
      float acc[BSR_MAX_R][4];
      for (size_t i = 0; i < rows; i++) {
        const float bias = a->bias != NULL ? a->bias[br * R + i] : 0.0f;
        for (size_t t = 0; t < 4; t++) acc[i][t] = bias;
      }
      for (uint32_t blk = b->block_row_ptr[br]; blk < b->block_row_ptr[br + 1]; blk++) {
        const size_t k0 = (size_t)b->block_col[blk] * C;
        const size_t cols = K - k0 < C ? K - k0 : C;
        const float* v = b->values + (size_t)blk * R * C;
        for (size_t q = 0; q < cols; q++) {
          if (a->k_mask != NULL && !a->k_mask[k0 + q]) continue;
          const float* xr = (const float*)((const char*)a->x + (k0 + q) * a->x_stride) + j;
          for (size_t i = 0; i < rows; i++) {
            const float wv = v[i * C + q];
            for (size_t t = 0; t < nb; t++) acc[i][t] += wv * xr[t];
          }
        }
      }
      for (size_t i = 0; i < rows; i++) {
        float* yr = (float*)((char*)a->y + (br * R + i) * a->y_stride);
        for (size_t t = 0; t < nb; t++) yr[j + t] = sparrow_clampf(acc[i][t], a->lo, a->hi);
      }
    }
  }
}
