/* BSR x dense, NEON (aarch64), 8x1 blocks (8 output rows x 1 K column): one block row at a
 * time, 8 output columns per pass (8 rows x 2 float32x4 = 16 accumulators), then 4, then a
 * scalar tail. A block's 8 weights are two vectors; each X row segment is loaded once and
 * multiplied by every lane. Padding rows of an edge block row (M % 8 != 0) hold 0: computed,
 * never stored, bias never read. */
#if defined(__aarch64__)
#include <arm_neon.h>

#include "../../pack/formats.h"

#define CLAMP(v) vminq_f32(vmaxq_f32((v), vlo), vhi)

void sparrow_spmm_bsr_f32_8x1__neon(const sparrow_matrix* w, const uint32_t* units, size_t u0, size_t u1,
                                    const sparrow_ukernel_args* a) {
  const sparrow_bsr* b = &w->u.bsr;
  const size_t M = w->m;
  const char* x = (const char*)a->x;
  const size_t xs = a->x_stride, n = a->n;
  const uint8_t* km = a->k_mask;
  const float32x4_t vlo = vdupq_n_f32(a->lo), vhi = vdupq_n_f32(a->hi);
  for (size_t u = u0; u < u1; u++) {
    const size_t br = units != NULL ? units[u] : u;
    const size_t r0 = br * 8, rows = M - r0 < 8 ? M - r0 : 8;
    const uint32_t b0 = b->block_row_ptr[br], b1 = b->block_row_ptr[br + 1];
    float bias[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    if (a->bias != NULL)
      for (size_t i = 0; i < rows; i++) bias[i] = a->bias[r0 + i];
    /* Padding rows point at row r0 (never stored through) so no pointer leaves Y. */
    float* y[8];
    for (size_t i = 0; i < 8; i++) y[i] = (float*)((char*)a->y + (r0 + (i < rows ? i : 0)) * a->y_stride);
    size_t j = 0;
    for (; j + 8 <= n; j += 8) {
      float32x4_t c00 = vdupq_n_f32(bias[0]), c01 = c00, c10 = vdupq_n_f32(bias[1]), c11 = c10;
      float32x4_t c20 = vdupq_n_f32(bias[2]), c21 = c20, c30 = vdupq_n_f32(bias[3]), c31 = c30;
      float32x4_t c40 = vdupq_n_f32(bias[4]), c41 = c40, c50 = vdupq_n_f32(bias[5]), c51 = c50;
      float32x4_t c60 = vdupq_n_f32(bias[6]), c61 = c60, c70 = vdupq_n_f32(bias[7]), c71 = c70;
      for (uint32_t blk = b0; blk < b1; blk++) {
        const size_t k = b->block_col[blk];
        if (km != NULL && !km[k]) continue;
        const float32x4_t wlo = vld1q_f32(b->values + (size_t)blk * 8);
        const float32x4_t whi = vld1q_f32(b->values + (size_t)blk * 8 + 4);
        const float* xr = (const float*)(x + k * xs) + j;
        const float32x4_t x0 = vld1q_f32(xr), x1 = vld1q_f32(xr + 4);
        c00 = vfmaq_laneq_f32(c00, x0, wlo, 0);
        c01 = vfmaq_laneq_f32(c01, x1, wlo, 0);
        c10 = vfmaq_laneq_f32(c10, x0, wlo, 1);
        c11 = vfmaq_laneq_f32(c11, x1, wlo, 1);
        c20 = vfmaq_laneq_f32(c20, x0, wlo, 2);
        c21 = vfmaq_laneq_f32(c21, x1, wlo, 2);
        c30 = vfmaq_laneq_f32(c30, x0, wlo, 3);
        c31 = vfmaq_laneq_f32(c31, x1, wlo, 3);
        c40 = vfmaq_laneq_f32(c40, x0, whi, 0);
        c41 = vfmaq_laneq_f32(c41, x1, whi, 0);
        c50 = vfmaq_laneq_f32(c50, x0, whi, 1);
        c51 = vfmaq_laneq_f32(c51, x1, whi, 1);
        c60 = vfmaq_laneq_f32(c60, x0, whi, 2);
        c61 = vfmaq_laneq_f32(c61, x1, whi, 2);
        c70 = vfmaq_laneq_f32(c70, x0, whi, 3);
        c71 = vfmaq_laneq_f32(c71, x1, whi, 3);
      }
#define STORE_ROW(i, lo4, hi4)           \
  do {                                   \
    vst1q_f32(y[i] + j, CLAMP(lo4));     \
    vst1q_f32(y[i] + j + 4, CLAMP(hi4)); \
  } while (0)
      if (rows > 7) STORE_ROW(7, c70, c71);
      if (rows > 6) STORE_ROW(6, c60, c61);
      if (rows > 5) STORE_ROW(5, c50, c51);
      if (rows > 4) STORE_ROW(4, c40, c41);
      if (rows > 3) STORE_ROW(3, c30, c31);
      if (rows > 2) STORE_ROW(2, c20, c21);
      if (rows > 1) STORE_ROW(1, c10, c11);
      STORE_ROW(0, c00, c01);
#undef STORE_ROW
    }
    for (; j + 4 <= n; j += 4) {
      float32x4_t c0 = vdupq_n_f32(bias[0]), c1 = vdupq_n_f32(bias[1]);
      float32x4_t c2 = vdupq_n_f32(bias[2]), c3 = vdupq_n_f32(bias[3]);
      float32x4_t c4 = vdupq_n_f32(bias[4]), c5 = vdupq_n_f32(bias[5]);
      float32x4_t c6 = vdupq_n_f32(bias[6]), c7 = vdupq_n_f32(bias[7]);
      for (uint32_t blk = b0; blk < b1; blk++) {
        const size_t k = b->block_col[blk];
        if (km != NULL && !km[k]) continue;
        const float32x4_t wlo = vld1q_f32(b->values + (size_t)blk * 8);
        const float32x4_t whi = vld1q_f32(b->values + (size_t)blk * 8 + 4);
        const float32x4_t x0 = vld1q_f32((const float*)(x + k * xs) + j);
        c0 = vfmaq_laneq_f32(c0, x0, wlo, 0);
        c1 = vfmaq_laneq_f32(c1, x0, wlo, 1);
        c2 = vfmaq_laneq_f32(c2, x0, wlo, 2);
        c3 = vfmaq_laneq_f32(c3, x0, wlo, 3);
        c4 = vfmaq_laneq_f32(c4, x0, whi, 0);
        c5 = vfmaq_laneq_f32(c5, x0, whi, 1);
        c6 = vfmaq_laneq_f32(c6, x0, whi, 2);
        c7 = vfmaq_laneq_f32(c7, x0, whi, 3);
      }
      if (rows > 7) vst1q_f32(y[7] + j, CLAMP(c7));
      if (rows > 6) vst1q_f32(y[6] + j, CLAMP(c6));
      if (rows > 5) vst1q_f32(y[5] + j, CLAMP(c5));
      if (rows > 4) vst1q_f32(y[4] + j, CLAMP(c4));
      if (rows > 3) vst1q_f32(y[3] + j, CLAMP(c3));
      if (rows > 2) vst1q_f32(y[2] + j, CLAMP(c2));
      if (rows > 1) vst1q_f32(y[1] + j, CLAMP(c1));
      vst1q_f32(y[0] + j, CLAMP(c0));
    }
    if (j < n) {
      const size_t nb = n - j; /* 1..3 */
      float acc[8][3];
      for (size_t i = 0; i < 8; i++) acc[i][0] = acc[i][1] = acc[i][2] = bias[i];
      for (uint32_t blk = b0; blk < b1; blk++) {
        const size_t k = b->block_col[blk];
        if (km != NULL && !km[k]) continue;
        const float* v = b->values + (size_t)blk * 8;
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
typedef int sparrow_spmm_bsr_f32_8x1__neon_unused; /* ISO C forbids an empty translation unit */
#endif
