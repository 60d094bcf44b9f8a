/* BSR x dense, NEON (aarch64), 1x4 blocks (1 output row x 4 K columns): one row at a time,
 * 16 output columns per pass (4 float32x4 accumulators), then 4, then a scalar tail. A block's
 * 4 weights are one vector, used lane by lane against 4 X rows. A block clipped by K (the last
 * block column when K % 4 != 0) or touched by the k_mask takes a column-by-column path that
 * reads only the active X rows inside K. */
#if defined(__aarch64__)
#include <arm_neon.h>

#include "../../pack/formats.h"

/* 1 when all 4 columns of the block at k0 lie inside K and are active. */
static inline int block_whole(size_t k0, size_t K, const uint8_t* km) {
  if (k0 + 4 > K) return 0;
  return km == NULL || (km[k0] & km[k0 + 1] & km[k0 + 2] & km[k0 + 3]);
}

void sparrow_spmm_bsr_f32_1x4__neon(const sparrow_matrix* w, const uint32_t* units, size_t u0, size_t u1,
                                    const sparrow_ukernel_args* a) {
  const sparrow_bsr* b = &w->u.bsr;
  const size_t K = w->k;
  const char* x = (const char*)a->x;
  const size_t xs = a->x_stride, n = a->n;
  const uint8_t* km = a->k_mask;
  const float32x4_t vlo = vdupq_n_f32(a->lo), vhi = vdupq_n_f32(a->hi);
  for (size_t u = u0; u < u1; u++) {
    const size_t r = units != NULL ? units[u] : u;
    const uint32_t b0 = b->block_row_ptr[r], b1 = b->block_row_ptr[r + 1];
    const float bias = a->bias != NULL ? a->bias[r] : 0.0f;
    float* yr = (float*)((char*)a->y + r * a->y_stride);
    size_t j = 0;
    for (; j + 16 <= n; j += 16) {
      float32x4_t c0 = vdupq_n_f32(bias), c1 = c0, c2 = c0, c3 = c0;
      for (uint32_t blk = b0; blk < b1; blk++) {
        const size_t k0 = (size_t)b->block_col[blk] * 4;
        const float* v = b->values + (size_t)blk * 4;
        const float* xr = (const float*)(x + k0 * xs) + j;
        if (block_whole(k0, K, km)) {
          const float32x4_t wv = vld1q_f32(v);
#define ROW_LANE(q)                                               \
  do {                                                            \
    const float* xq = (const float*)((const char*)xr + (q) * xs); \
    c0 = vfmaq_laneq_f32(c0, vld1q_f32(xq), wv, q);               \
    c1 = vfmaq_laneq_f32(c1, vld1q_f32(xq + 4), wv, q);           \
    c2 = vfmaq_laneq_f32(c2, vld1q_f32(xq + 8), wv, q);           \
    c3 = vfmaq_laneq_f32(c3, vld1q_f32(xq + 12), wv, q);          \
  } while (0)
          ROW_LANE(0);
          ROW_LANE(1);
          ROW_LANE(2);
          ROW_LANE(3);
#undef ROW_LANE
        } else {
          const size_t cols = K - k0 < 4 ? K - k0 : 4;
          for (size_t q = 0; q < cols; q++) {
            if (km != NULL && !km[k0 + q]) continue;
            const float* xq = (const float*)((const char*)xr + q * xs);
            c0 = vfmaq_n_f32(c0, vld1q_f32(xq), v[q]);
            c1 = vfmaq_n_f32(c1, vld1q_f32(xq + 4), v[q]);
            c2 = vfmaq_n_f32(c2, vld1q_f32(xq + 8), v[q]);
            c3 = vfmaq_n_f32(c3, vld1q_f32(xq + 12), v[q]);
          }
        }
      }
      vst1q_f32(yr + j, vminq_f32(vmaxq_f32(c0, vlo), vhi));
      vst1q_f32(yr + j + 4, vminq_f32(vmaxq_f32(c1, vlo), vhi));
      vst1q_f32(yr + j + 8, vminq_f32(vmaxq_f32(c2, vlo), vhi));
      vst1q_f32(yr + j + 12, vminq_f32(vmaxq_f32(c3, vlo), vhi));
    }
    for (; j + 4 <= n; j += 4) {
      float32x4_t c0 = vdupq_n_f32(bias);
      for (uint32_t blk = b0; blk < b1; blk++) {
        const size_t k0 = (size_t)b->block_col[blk] * 4;
        const float* v = b->values + (size_t)blk * 4;
        const float* xr = (const float*)(x + k0 * xs) + j;
        if (block_whole(k0, K, km)) {
          const float32x4_t wv = vld1q_f32(v);
          c0 = vfmaq_laneq_f32(c0, vld1q_f32(xr), wv, 0);
          c0 = vfmaq_laneq_f32(c0, vld1q_f32((const float*)((const char*)xr + xs)), wv, 1);
          c0 = vfmaq_laneq_f32(c0, vld1q_f32((const float*)((const char*)xr + 2 * xs)), wv, 2);
          c0 = vfmaq_laneq_f32(c0, vld1q_f32((const float*)((const char*)xr + 3 * xs)), wv, 3);
        } else {
          const size_t cols = K - k0 < 4 ? K - k0 : 4;
          for (size_t q = 0; q < cols; q++) {
            if (km != NULL && !km[k0 + q]) continue;
            c0 = vfmaq_n_f32(c0, vld1q_f32((const float*)((const char*)xr + q * xs)), v[q]);
          }
        }
      }
      vst1q_f32(yr + j, vminq_f32(vmaxq_f32(c0, vlo), vhi));
    }
    if (j < n) {
      const size_t nb = n - j; /* 1..3 */
      float acc[3] = {bias, bias, bias};
      for (uint32_t blk = b0; blk < b1; blk++) {
        const size_t k0 = (size_t)b->block_col[blk] * 4;
        const size_t cols = K - k0 < 4 ? K - k0 : 4;
        const float* v = b->values + (size_t)blk * 4;
        for (size_t q = 0; q < cols; q++) {
          if (km != NULL && !km[k0 + q]) continue;
          const float* xq = (const float*)(x + (k0 + q) * xs) + j;
          for (size_t t = 0; t < nb; t++) acc[t] += v[q] * xq[t];
        }
      }
      for (size_t t = 0; t < nb; t++) yr[j + t] = sparrow_clampf(acc[t], a->lo, a->hi);
    }
  }
}

#else
typedef int sparrow_spmm_bsr_f32_1x4__neon_unused; /* ISO C forbids an empty translation unit */
#endif
