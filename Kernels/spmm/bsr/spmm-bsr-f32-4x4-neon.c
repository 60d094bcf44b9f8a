/* BSR x dense, NEON (aarch64), 4x4 blocks: one block row (4 output rows) at a time, 16 output
 * columns per pass (4 rows x 4 float32x4 = 16 accumulators), then 4, then a scalar tail. The
 * block's 4 weight rows are 4 vectors; X row k0+q meets lane q of each. Blocks clipped by K or
 * touched by the k_mask go column by column over the active columns inside K only. Padding rows
 * of an edge block row (M % 4 != 0) hold 0: computed, never stored, bias never read. */
#if defined(__aarch64__)
#include <arm_neon.h>

#include "../../pack/formats.h"

#define CLAMP(v) vminq_f32(vmaxq_f32((v), vlo), vhi)

static inline int block_whole(size_t k0, size_t K, const uint8_t* km) {
  if (k0 + 4 > K) return 0;
  return km == NULL || (km[k0] & km[k0 + 1] & km[k0 + 2] & km[k0 + 3]);
}

void sparrow_spmm_bsr_f32_4x4__neon(const sparrow_matrix* w, const uint32_t* units, size_t u0,
                                    size_t u1, const sparrow_ukernel_args* a) {
  const sparrow_bsr* b = &w->u.bsr;
  const size_t M = w->m, K = w->k;
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
      float32x4_t c[4][4];
      c[0][0] = c[0][1] = c[0][2] = c[0][3] = vdupq_n_f32(bias[0]);
      c[1][0] = c[1][1] = c[1][2] = c[1][3] = vdupq_n_f32(bias[1]);
      c[2][0] = c[2][1] = c[2][2] = c[2][3] = vdupq_n_f32(bias[2]);
      c[3][0] = c[3][1] = c[3][2] = c[3][3] = vdupq_n_f32(bias[3]);
      for (uint32_t blk = b0; blk < b1; blk++) {
        const size_t k0 = (size_t)b->block_col[blk] * 4;
        const float* v = b->values + (size_t)blk * 16;
        if (block_whole(k0, K, km)) {
          const float32x4_t w0 = vld1q_f32(v), w1 = vld1q_f32(v + 4);
          const float32x4_t w2 = vld1q_f32(v + 8), w3 = vld1q_f32(v + 12);
#define COL_LANE(q)                                                                   \
  do {                                                                                \
    const float* xq = (const float*)(x + (k0 + (q)) * xs) + j;                        \
    const float32x4_t x0 = vld1q_f32(xq), x1 = vld1q_f32(xq + 4);                     \
    const float32x4_t x2 = vld1q_f32(xq + 8), x3 = vld1q_f32(xq + 12);                \
    c[0][0] = vfmaq_laneq_f32(c[0][0], x0, w0, q);                                    \
    c[0][1] = vfmaq_laneq_f32(c[0][1], x1, w0, q);                                    \
    c[0][2] = vfmaq_laneq_f32(c[0][2], x2, w0, q);                                    \
    c[0][3] = vfmaq_laneq_f32(c[0][3], x3, w0, q);                                    \
    c[1][0] = vfmaq_laneq_f32(c[1][0], x0, w1, q);                                    \
    c[1][1] = vfmaq_laneq_f32(c[1][1], x1, w1, q);                                    \
    c[1][2] = vfmaq_laneq_f32(c[1][2], x2, w1, q);                                    \
    c[1][3] = vfmaq_laneq_f32(c[1][3], x3, w1, q);                                    \
    c[2][0] = vfmaq_laneq_f32(c[2][0], x0, w2, q);                                    \
    c[2][1] = vfmaq_laneq_f32(c[2][1], x1, w2, q);                                    \
    c[2][2] = vfmaq_laneq_f32(c[2][2], x2, w2, q);                                    \
    c[2][3] = vfmaq_laneq_f32(c[2][3], x3, w2, q);                                    \
    c[3][0] = vfmaq_laneq_f32(c[3][0], x0, w3, q);                                    \
    c[3][1] = vfmaq_laneq_f32(c[3][1], x1, w3, q);                                    \
    c[3][2] = vfmaq_laneq_f32(c[3][2], x2, w3, q);                                    \
    c[3][3] = vfmaq_laneq_f32(c[3][3], x3, w3, q);                                    \
  } while (0)
          COL_LANE(0);
          COL_LANE(1);
          COL_LANE(2);
          COL_LANE(3);
#undef COL_LANE
        } else {
          const size_t cols = K - k0 < 4 ? K - k0 : 4;
          for (size_t q = 0; q < cols; q++) {
            if (km != NULL && !km[k0 + q]) continue;
            const float* xq = (const float*)(x + (k0 + q) * xs) + j;
            const float32x4_t x0 = vld1q_f32(xq), x1 = vld1q_f32(xq + 4);
            const float32x4_t x2 = vld1q_f32(xq + 8), x3 = vld1q_f32(xq + 12);
#define ROW_N(i)                                         \
  do {                                                   \
    const float wv = v[(i) * 4 + q];                     \
    c[i][0] = vfmaq_n_f32(c[i][0], x0, wv);              \
    c[i][1] = vfmaq_n_f32(c[i][1], x1, wv);              \
    c[i][2] = vfmaq_n_f32(c[i][2], x2, wv);              \
    c[i][3] = vfmaq_n_f32(c[i][3], x3, wv);              \
  } while (0)
            ROW_N(0);
            ROW_N(1);
            ROW_N(2);
            ROW_N(3);
#undef ROW_N
          }
        }
      }
#define STORE_ROW(i)                                     \
  do {                                                   \
    vst1q_f32(y[i] + j, CLAMP(c[i][0]));                 \
    vst1q_f32(y[i] + j + 4, CLAMP(c[i][1]));             \
    vst1q_f32(y[i] + j + 8, CLAMP(c[i][2]));             \
    vst1q_f32(y[i] + j + 12, CLAMP(c[i][3]));            \
  } while (0)
      if (rows > 3) STORE_ROW(3);
      if (rows > 2) STORE_ROW(2);
      if (rows > 1) STORE_ROW(1);
      STORE_ROW(0);
#undef STORE_ROW
    }
    for (; j + 4 <= n; j += 4) {
      float32x4_t c0 = vdupq_n_f32(bias[0]), c1 = vdupq_n_f32(bias[1]);
      float32x4_t c2 = vdupq_n_f32(bias[2]), c3 = vdupq_n_f32(bias[3]);
      for (uint32_t blk = b0; blk < b1; blk++) {
        const size_t k0 = (size_t)b->block_col[blk] * 4;
        const float* v = b->values + (size_t)blk * 16;
        const size_t cols = K - k0 < 4 ? K - k0 : 4;
        for (size_t q = 0; q < cols; q++) {
          if (km != NULL && !km[k0 + q]) continue;
          const float32x4_t xv = vld1q_f32((const float*)(x + (k0 + q) * xs) + j);
          c0 = vfmaq_n_f32(c0, xv, v[q]);
          c1 = vfmaq_n_f32(c1, xv, v[4 + q]);
          c2 = vfmaq_n_f32(c2, xv, v[8 + q]);
          c3 = vfmaq_n_f32(c3, xv, v[12 + q]);
        }
      }
      if (rows > 3) vst1q_f32(y[3] + j, CLAMP(c3));
      if (rows > 2) vst1q_f32(y[2] + j, CLAMP(c2));
      if (rows > 1) vst1q_f32(y[1] + j, CLAMP(c1));
      vst1q_f32(y[0] + j, CLAMP(c0));
    }
    if (j < n) {
      const size_t nb = n - j; /* 1..3 */
      float acc[4][3];
      for (size_t i = 0; i < 4; i++) acc[i][0] = acc[i][1] = acc[i][2] = bias[i];
      for (uint32_t blk = b0; blk < b1; blk++) {
        const size_t k0 = (size_t)b->block_col[blk] * 4;
        const size_t cols = K - k0 < 4 ? K - k0 : 4;
        const float* v = b->values + (size_t)blk * 16;
        for (size_t q = 0; q < cols; q++) {
          if (km != NULL && !km[k0 + q]) continue;
          const float* xq = (const float*)(x + (k0 + q) * xs) + j;
          for (size_t i = 0; i < rows; i++)
            for (size_t t = 0; t < nb; t++) acc[i][t] += v[i * 4 + q] * xq[t];
        }
      }
      for (size_t i = 0; i < rows; i++)
        for (size_t t = 0; t < nb; t++) y[i][j + t] = sparrow_clampf(acc[i][t], a->lo, a->hi);
    }
  }
}

#else
typedef int sparrow_spmm_bsr_f32_4x4__neon_unused; /* ISO C forbids an empty translation unit */
#endif
