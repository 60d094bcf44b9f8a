/* CSR x dense, NEON (aarch64): one row at a time, 16 output columns per pass (4 float32x4
 * accumulators), then 4, then a scalar tail; X is never read past column n-1. Each nonzero is
 * one broadcast multiply-add into the accumulators, in row order like the scalar kernel. */
#if defined(__aarch64__)
#include <arm_neon.h>

#include "../../pack/formats.h"

/* One row for one column-index width (u16 or u32): the index type is the only difference. */
#define CSR_NEON_ROW_FN(NAME, IDX_T)                                                           \
  static void NAME(const IDX_T* col, const float* val, uint32_t p0, uint32_t p1, float bias,   \
                   float* yr, const sparrow_ukernel_args* a) {                                 \
    const char* x = (const char*)a->x;                                                         \
    const size_t xs = a->x_stride, n = a->n;                                                   \
    const float32x4_t vlo = vdupq_n_f32(a->lo), vhi = vdupq_n_f32(a->hi);                      \
    size_t j = 0;                                                                              \
    for (; j + 16 <= n; j += 16) {                                                             \
      float32x4_t acc0 = vdupq_n_f32(bias), acc1 = acc0, acc2 = acc0, acc3 = acc0;             \
      for (uint32_t p = p0; p < p1; p++) {                                                     \
        const size_t c = col[p];                                                               \
        const float* xr = (const float*)(x + c * xs) + j;                                      \
        const float v = val[p];                                                                \
        acc0 = vfmaq_n_f32(acc0, vld1q_f32(xr), v);                                            \
        acc1 = vfmaq_n_f32(acc1, vld1q_f32(xr + 4), v);                                        \
        acc2 = vfmaq_n_f32(acc2, vld1q_f32(xr + 8), v);                                        \
        acc3 = vfmaq_n_f32(acc3, vld1q_f32(xr + 12), v);                                       \
      }                                                                                        \
      vst1q_f32(yr + j, vminq_f32(vmaxq_f32(acc0, vlo), vhi));                                 \
      vst1q_f32(yr + j + 4, vminq_f32(vmaxq_f32(acc1, vlo), vhi));                             \
      vst1q_f32(yr + j + 8, vminq_f32(vmaxq_f32(acc2, vlo), vhi));                             \
      vst1q_f32(yr + j + 12, vminq_f32(vmaxq_f32(acc3, vlo), vhi));                            \
    }                                                                                          \
    for (; j + 4 <= n; j += 4) {                                                               \
      float32x4_t acc = vdupq_n_f32(bias);                                                     \
      for (uint32_t p = p0; p < p1; p++) {                                                     \
        const size_t c = col[p];                                                               \
        acc = vfmaq_n_f32(acc, vld1q_f32((const float*)(x + c * xs) + j), val[p]);             \
      }                                                                                        \
      vst1q_f32(yr + j, vminq_f32(vmaxq_f32(acc, vlo), vhi));                                  \
    }                                                                                          \
    if (j < n) {                                                                               \
      const size_t nb = n - j; /* 1..3 */                                                      \
      float acc[3] = {bias, bias, bias};                                                       \
      for (uint32_t p = p0; p < p1; p++) {                                                     \
        const size_t c = col[p];                                                               \
        const float* xr = (const float*)(x + c * xs) + j;                                      \
        const float v = val[p];                                                                \
        for (size_t t = 0; t < nb; t++) acc[t] += v * xr[t];                                   \
      }                                                                                        \
      for (size_t t = 0; t < nb; t++) yr[j + t] = sparrow_clampf(acc[t], a->lo, a->hi);        \
    }                                                                                          \
  }

CSR_NEON_ROW_FN(csr_row_u16, uint16_t)
CSR_NEON_ROW_FN(csr_row_u32, uint32_t)

void sparrow_spmm_csr_f32_1x16__neon(const sparrow_matrix* w, const uint32_t* units, size_t u0,
                                     size_t u1, const sparrow_ukernel_args* a) {
  const sparrow_csr* c = &w->u.csr;
  for (size_t u = u0; u < u1; u++) {
    const size_t r = units != NULL ? units[u] : u;
    const float bias = a->bias != NULL ? a->bias[r] : 0.0f;
    float* yr = (float*)((char*)a->y + r * a->y_stride);
    const uint32_t p0 = c->row_ptr[r], p1 = c->row_ptr[r + 1];
    if (c->col16 != NULL) {
      csr_row_u16(c->col16, c->values, p0, p1, bias, yr, a);
    } else {
      csr_row_u32(c->col32, c->values, p0, p1, bias, yr, a);
    }
  }
}

#else
typedef int sparrow_spmm_csr_f32_1x16__neon_unused; /* ISO C forbids an empty translation unit */
#endif
