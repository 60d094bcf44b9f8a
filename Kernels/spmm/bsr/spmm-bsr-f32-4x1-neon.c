/* BSR x dense, NEON (aarch64), 4x1 blocks (4 output rows x 1 K column): one block row at a
 * time, 16 output columns per pass (4 rows x 4 float32x4 = 16 accumulators), then 4, then a
 * scalar tail. A block's 4 weights are one vector; each X row segment is loaded once and
 * multiplied by every lane. In an edge block row (M % 4 != 0) the padding rows hold 0 and are
 * computed but neither their bias read nor their output stored. */
#if defined(__aarch64__)
#include <arm_neon.h>

#include "../../pack/formats.h"

#define CLAMP_STORE(p, v) vst1q_f32((p), vminq_f32(vmaxq_f32((v), vlo), vhi))
#define STORE_ROW16(p, v0, v1, v2, v3) \
  do {                                 \
    CLAMP_STORE((p), v0);              \
    CLAMP_STORE((p) + 4, v1);          \
    CLAMP_STORE((p) + 8, v2);          \
    CLAMP_STORE((p) + 12, v3);         \
  } while (0)

void sparrow_spmm_bsr_f32_4x1__neon(const sparrow_matrix* w, const uint32_t* units, size_t u0, size_t u1,
                                    const sparrow_ukernel_args* a) {
  const sparrow_bsr* b = &w->u.bsr;
  const size_t M = w->m;
  const char* x = (const char*)a->x;
  const size_t xs = a->x_stride, n = a->n;
  const uint8_t* km = a->k_mask;
  const float32x4_t vlo = vdupq_n_f32(a->lo), vhi = vdupq_n_f32(a->hi);
  for (size_t u = u0; u < u1; u++) {
    const size_t br = units != NULL ? units[u] : u;
    const size_t r0 = br * 4, rows = M - r0 < 4 ? M - r0 : 4;
    const uint32_t b0 = b->block_row_ptr[br], b1 = b->block_row_ptr[br + 1];
    float bias[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    if (a->bias != NULL)
      for (size_t i = 0; i < rows; i++) bias[i] = a->bias[r0 + i];
    /* Padding rows point at row r0 (never stored through) so no pointer leaves Y. */
    float* y[4];
    for (size_t i = 0; i < 4; i++) y[i] = (float*)((char*)a->y + (r0 + (i < rows ? i : 0)) * a->y_stride);
    size_t j = 0;
    for (; j + 16 <= n; j += 16) {
      float32x4_t c00 = vdupq_n_f32(bias[0]), c01 = c00, c02 = c00, c03 = c00;
      float32x4_t c10 = vdupq_n_f32(bias[1]), c11 = c10, c12 = c10, c13 = c10;
      float32x4_t c20 = vdupq_n_f32(bias[2]), c21 = c20, c22 = c20, c23 = c20;
      float32x4_t c30 = vdupq_n_f32(bias[3]), c31 = c30, c32 = c30, c33 = c30;
      for (uint32_t blk = b0; blk < b1; blk++) {
        const size_t k = b->block_col[blk];
        if (km != NULL && !km[k]) continue;
        const float32x4_t wv = vld1q_f32(b->values + (size_t)blk * 4);
        const float* xr = (const float*)(x + k * xs) + j;
        const float32x4_t x0 = vld1q_f32(xr), x1 = vld1q_f32(xr + 4);
        const float32x4_t x2 = vld1q_f32(xr + 8), x3 = vld1q_f32(xr + 12);
        c00 = vfmaq_laneq_f32(c00, x0, wv, 0);
        c01 = vfmaq_laneq_f32(c01, x1, wv, 0);
        c02 = vfmaq_laneq_f32(c02, x2, wv, 0);
        c03 = vfmaq_laneq_f32(c03, x3, wv, 0);
        c10 = vfmaq_laneq_f32(c10, x0, wv, 1);
        c11 = vfmaq_laneq_f32(c11, x1, wv, 1);
        c12 = vfmaq_laneq_f32(c12, x2, wv, 1);
        c13 = vfmaq_laneq_f32(c13, x3, wv, 1);
        c20 = vfmaq_laneq_f32(c20, x0, wv, 2);
        c21 = vfmaq_laneq_f32(c21, x1, wv, 2);
        c22 = vfmaq_laneq_f32(c22, x2, wv, 2);
        c23 = vfmaq_laneq_f32(c23, x3, wv, 2);
        c30 = vfmaq_laneq_f32(c30, x0, wv, 3);
        c31 = vfmaq_laneq_f32(c31, x1, wv, 3);
        c32 = vfmaq_laneq_f32(c32, x2, wv, 3);
        c33 = vfmaq_laneq_f32(c33, x3, wv, 3);
      }
      if (rows > 3) STORE_ROW16(y[3] + j, c30, c31, c32, c33);
      if (rows > 2) STORE_ROW16(y[2] + j, c20, c21, c22, c23);
      if (rows > 1) STORE_ROW16(y[1] + j, c10, c11, c12, c13);
      STORE_ROW16(y[0] + j, c00, c01, c02, c03);
    }
    for (; j + 4 <= n; j += 4) {
      float32x4_t c0 = vdupq_n_f32(bias[0]), c1 = vdupq_n_f32(bias[1]);
      float32x4_t c2 = vdupq_n_f32(bias[2]), c3 = vdupq_n_f32(bias[3]);
      for (uint32_t blk = b0; blk < b1; blk++) {
        const size_t k = b->block_col[blk];
        if (km != NULL && !km[k]) continue;
        const float32x4_t wv = vld1q_f32(b->values + (size_t)blk * 4);
        const float32x4_t x0 = vld1q_f32((const float*)(x + k * xs) + j);
        c0 = vfmaq_laneq_f32(c0, x0, wv, 0);
        c1 = vfmaq_laneq_f32(c1, x0, wv, 1);
        c2 = vfmaq_laneq_f32(c2, x0, wv, 2);
        c3 = vfmaq_laneq_f32(c3, x0, wv, 3);
      }
      if (rows > 3) CLAMP_STORE(y[3] + j, c3);
      if (rows > 2) CLAMP_STORE(y[2] + j, c2);
      if (rows > 1) CLAMP_STORE(y[1] + j, c1);
      CLAMP_STORE(y[0] + j, c0);
    }
    if (j < n) {
      const size_t nb = n - j; /* 1..3 */
      float acc[4][3];
      for (size_t i = 0; i < 4; i++) acc[i][0] = acc[i][1] = acc[i][2] = bias[i];
      for (uint32_t blk = b0; blk < b1; blk++) {
        const size_t k = b->block_col[blk];
        if (km != NULL && !km[k]) continue;
        const float* v = b->values + (size_t)blk * 4;
        const float* xr = (const float*)(x + k * xs) + j;
        for (size_t i = 0; i < rows; i++)
          for (size_t t = 0; t < nb; t++) acc[i][t] += v[i] * xr[t];
      }
      for (size_t i = 0; i < rows; i++)
        for (size_t t = 0; t < nb; t++) y[i][j + t] = sparrow_clampf(acc[i][t], a->lo, a->hi);
    }
  }
}

#else
typedef int sparrow_spmm_bsr_f32_4x1__neon_unused; /* ISO C forbids an empty translation unit */
#endif
