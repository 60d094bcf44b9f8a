/* N:M x dense, NEON (aarch64), any n:m and any group stride: one row at a time, 16 output
 * columns per pass (4 float32x4 accumulators), then 4, then a scalar tail.
 *
 * Groups are walked as (channel group cg, kernel position s) so the base column of group
 * g = cg*S + s is cg*m*S + s without a division (S == 1 gives g*m). Zero pairs are padding and
 * are skipped before their column is formed: a padding pair of a partial last group may point
 * past K (formats.h), so reading its X row would read past row K-1. */
#if defined(__aarch64__)
#include <arm_neon.h>

#include "../../pack/formats.h"

/* Runs BODY for every active nonzero pair of the row, with `v` its value and `xr` its X row
 * advanced to column j. */
#define NM_FOR_EACH_PAIR(BODY)                              \
  for (size_t cg = 0, g = 0; cg < channel_groups; cg++) {   \
    for (size_t s = 0; s < S; s++, g++) {                   \
      const size_t base = cg * MS + s;                      \
      const float* gv = vals + g * N;                       \
      const uint8_t* gi = idx + g * N;                      \
      for (size_t q = 0; q < N; q++) {                      \
        const float v = gv[q];                              \
        if (v == 0.0f) continue;                            \
        const size_t col = base + (size_t)gi[q] * S;        \
        if (km != NULL && !km[col]) continue;               \
        const float* xr = (const float*)(x + col * xs) + j; \
        BODY                                                \
      }                                                     \
    }                                                       \
  }

void sparrow_spmm_nm_f32_1x16__neon(const sparrow_matrix* w, const uint32_t* units, size_t u0, size_t u1,
                                    const sparrow_ukernel_args* a) {
  const sparrow_nm* sp = &w->u.nm;
  const size_t S = sp->stride, N = sp->n, MS = (size_t)sp->m * sp->stride;
  /* S == 1: groups = ceil(K/m); S > 1: groups = (K/S/m) * S, a multiple of S. */
  const size_t channel_groups = sp->groups / S;
  const char* x = (const char*)a->x;
  const size_t xs = a->x_stride, n = a->n;
  const uint8_t* km = a->k_mask;
  const float32x4_t vlo = vdupq_n_f32(a->lo), vhi = vdupq_n_f32(a->hi);
  for (size_t u = u0; u < u1; u++) {
    const size_t r = units != NULL ? units[u] : u;
    const float bias = a->bias != NULL ? a->bias[r] : 0.0f;
    float* yr = (float*)((char*)a->y + r * a->y_stride);
    const float* vals = sp->values + r * sp->groups * N;
    const uint8_t* idx = sp->idx + r * sp->groups * N;
    size_t j = 0;
    for (; j + 16 <= n; j += 16) {
      float32x4_t acc0 = vdupq_n_f32(bias), acc1 = acc0, acc2 = acc0, acc3 = acc0;
      NM_FOR_EACH_PAIR({
        acc0 = vfmaq_n_f32(acc0, vld1q_f32(xr), v);
        acc1 = vfmaq_n_f32(acc1, vld1q_f32(xr + 4), v);
        acc2 = vfmaq_n_f32(acc2, vld1q_f32(xr + 8), v);
        acc3 = vfmaq_n_f32(acc3, vld1q_f32(xr + 12), v);
      })
      vst1q_f32(yr + j, vminq_f32(vmaxq_f32(acc0, vlo), vhi));
      vst1q_f32(yr + j + 4, vminq_f32(vmaxq_f32(acc1, vlo), vhi));
      vst1q_f32(yr + j + 8, vminq_f32(vmaxq_f32(acc2, vlo), vhi));
      vst1q_f32(yr + j + 12, vminq_f32(vmaxq_f32(acc3, vlo), vhi));
    }
    for (; j + 4 <= n; j += 4) {
      float32x4_t acc = vdupq_n_f32(bias);
      NM_FOR_EACH_PAIR({ acc = vfmaq_n_f32(acc, vld1q_f32(xr), v); })
      vst1q_f32(yr + j, vminq_f32(vmaxq_f32(acc, vlo), vhi));
    }
    if (j < n) {
      const size_t nb = n - j; /* 1..3 */
      float acc[3] = {bias, bias, bias};
      NM_FOR_EACH_PAIR({
        for (size_t t = 0; t < nb; t++) acc[t] += v * xr[t];
      })
      for (size_t t = 0; t < nb; t++) yr[j + t] = sparrow_clampf(acc[t], a->lo, a->hi);
    }
  }
}

#else
typedef int sparrow_spmm_nm_f32_1x16__neon_unused; /* ISO C forbids an empty translation unit */
#endif
