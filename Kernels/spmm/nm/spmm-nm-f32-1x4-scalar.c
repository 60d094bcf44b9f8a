/* N:M x dense, portable scalar: one row at a time, 4 output columns per pass. */
#include "../../pack/formats.h"

void sparrow_spmm_nm_f32_1x4__scalar(const sparrow_matrix* w, const uint32_t* units, size_t u0, size_t u1,
                                     const sparrow_ukernel_args* a) {
  const sparrow_nm* s = &w->u.nm;
  const size_t S = s->stride, M = s->m, N = s->n;
  for (size_t u = u0; u < u1; u++) {
    const size_t r = units != NULL ? units[u] : u;
    const float bias = a->bias != NULL ? a->bias[r] : 0.0f;
    float* yr = (float*)((char*)a->y + r * a->y_stride);
    const float* vals = s->values + (size_t)r * s->groups * N;
    const uint8_t* idx = s->idx + (size_t)r * s->groups * N;
    for (size_t j = 0; j < a->n; j += 4) {
      const size_t nb = a->n - j < 4 ? a->n - j : 4;
      float acc[4] = {bias, bias, bias, bias};
      for (size_t g = 0; g < s->groups; g++) {
        /* Base column and step of group g (see formats.h). */
        const size_t base = S == 1 ? g * M : (g / S) * M * S + g % S;
        for (size_t q = 0; q < N; q++) {
          const float v = vals[g * N + q];
          if (v == 0.0f) continue; /* padding pair */
          const size_t col = base + (size_t)idx[g * N + q] * S;
          if (a->k_mask != NULL && !a->k_mask[col]) continue;
          const float* xr = (const float*)((const char*)a->x + col * a->x_stride) + j;
          for (size_t t = 0; t < nb; t++) acc[t] += v * xr[t];
        }
      }
      for (size_t t = 0; t < nb; t++) yr[j + t] = sparrow_clampf(acc[t], a->lo, a->hi);
    }
  }
}
