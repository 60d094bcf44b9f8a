/* BSR x dense, NEON (aarch64), any block shape up to 16 x 16: one block row at a time, 4 output
 * columns per pass (one float32x4 accumulator per block row), then a scalar tail. Edge blocks
 * are clipped to M (rows not stored, bias not read) and K (columns not read). The shapes that
 * matter get their own register-blocked kernels (4x1, 1x4, 4x4, 8x1); this one keeps every
 * other shape off the scalar path. */
#if defined(__aarch64__)
#include <arm_neon.h>

#include "../../pack/formats.h"

#define BSR_NEON_MAX_R 16 /* SPARROW_MAX_BLOCK */

void sparrow_spmm_bsr_f32_rxc__neon(const sparrow_matrix* w, const uint32_t* units, size_t u0, size_t u1,
                                    const sparrow_ukernel_args* a) {
  const sparrow_bsr* b = &w->u.bsr;
  const size_t R = b->r, C = b->c, M = w->m, K = w->k;
  const char* x = (const char*)a->x;
  const size_t xs = a->x_stride, n = a->n;
  const uint8_t* km = a->k_mask;
  const float32x4_t vlo = vdupq_n_f32(a->lo), vhi = vdupq_n_f32(a->hi);
  for (size_t u = u0; u < u1; u++) {
    const size_t br = units != NULL ? units[u] : u;
    const size_t rows = M - br * R < R ? M - br * R : R;
    const uint32_t b0 = b->block_row_ptr[br], b1 = b->block_row_ptr[br + 1];
    float bias[BSR_NEON_MAX_R];
    for (size_t i = 0; i < rows; i++) bias[i] = a->bias != NULL ? a->bias[br * R + i] : 0.0f;
    size_t j = 0;
    for (; j + 4 <= n; j += 4) {
      float32x4_t acc[BSR_NEON_MAX_R];
      for (size_t i = 0; i < rows; i++) acc[i] = vdupq_n_f32(bias[i]);
      for (uint32_t blk = b0; blk < b1; blk++) {
        const size_t k0 = (size_t)b->block_col[blk] * C;
        const size_t cols = K - k0 < C ? K - k0 : C;
        const float* v = b->values + (size_t)blk * R * C;
        for (size_t q = 0; q < cols; q++) {
          if (km != NULL && !km[k0 + q]) continue;
          const float32x4_t xv = vld1q_f32((const float*)(x + (k0 + q) * xs) + j);
          for (size_t i = 0; i < rows; i++) acc[i] = vfmaq_n_f32(acc[i], xv, v[i * C + q]);
        }
      }
      for (size_t i = 0; i < rows; i++) {
        float* yr = (float*)((char*)a->y + (br * R + i) * a->y_stride);
        vst1q_f32(yr + j, vminq_f32(vmaxq_f32(acc[i], vlo), vhi));
      }
    }
    if (j < n) {
      const size_t nb = n - j; /* 1..3 */
      float acc[BSR_NEON_MAX_R][3];
      for (size_t i = 0; i < rows; i++) acc[i][0] = acc[i][1] = acc[i][2] = bias[i];
      for (uint32_t blk = b0; blk < b1; blk++) {
        const size_t k0 = (size_t)b->block_col[blk] * C;
        const size_t cols = K - k0 < C ? K - k0 : C;
        const float* v = b->values + (size_t)blk * R * C;
        for (size_t q = 0; q < cols; q++) {
          if (km != NULL && !km[k0 + q]) continue;
          const float* xr = (const float*)(x + (k0 + q) * xs) + j;
          for (size_t i = 0; i < rows; i++)
            for (size_t t = 0; t < nb; t++) acc[i][t] += v[i * C + q] * xr[t];
        }
      }
      for (size_t i = 0; i < rows; i++) {
        float* yr = (float*)((char*)a->y + (br * R + i) * a->y_stride);
        for (size_t t = 0; t < nb; t++) yr[j + t] = sparrow_clampf(acc[i][t], a->lo, a->hi);
      }
    }
  }
}

#else
typedef int sparrow_spmm_bsr_f32_rxc__neon_unused; /* ISO C forbids an empty translation unit */
#endif
