/* N:M x dense with a shared pattern (formats.h), portable scalar: a block of 8 rows x 4
 * columns per pass, each kept X row read once for the block's 8 rows. The reference the SIMD
 * shared-pattern kernels are checked beside, and the path for CPUs without them. */
#include "../../pack/formats.h"

#define R SPARROW_NM_SHARED_ROWS

void sparrow_spmm_nm_f32_8x4__scalar(const sparrow_matrix* w, const uint32_t* units, size_t u0, size_t u1,
                                     const sparrow_ukernel_args* a) {
  const sparrow_nm* s = &w->u.nm;
  const size_t S = s->stride, G = s->groups, N = s->n, M = w->m, K = w->k;
  size_t u = u0;
  while (u < u1) {
    /* Units in one block: computed together, only the listed rows stored. */
    const size_t b = (units != NULL ? units[u] : u) / R;
    unsigned rows = 0;
    for (; u < u1; u++) {
      const size_t r = units != NULL ? units[u] : u;
      if (r / R != b) break;
      if (r < M) rows |= 1u << (r % R);
    }
    for (size_t j = 0; j < a->n; j += 4) {
      const size_t nb = a->n - j < 4 ? a->n - j : 4;
      float acc[R][4] = {{0}};
      const float* wv = s->shared_values + b * G * N * R;
      const uint8_t* ix = s->shared_idx + b * G * N;
      for (size_t g = 0; g < G; g++)
        for (size_t q = 0; q < N; q++, wv += R, ix++) {
          const size_t col = (g / S) * s->m * S + g % S + (size_t)*ix * S;
          /* Padding past K holds zeros in every row; inactive channels count as zero. */
          if (col >= K || (a->k_mask != NULL && !a->k_mask[col])) continue;
          const float* xr = (const float*)((const char*)a->x + col * a->x_stride) + j;
          for (size_t i = 0; i < R; i++)
            for (size_t t = 0; t < nb; t++) acc[i][t] += wv[i] * xr[t];
        }
      for (size_t i = 0; i < R; i++) {
        if (!(rows >> i & 1)) continue;
        const size_t r = b * R + i;
        const float bias = a->bias != NULL ? a->bias[r] : 0.0f;
        float* yr = (float*)((char*)a->y + r * a->y_stride);
        for (size_t t = 0; t < nb; t++) yr[j + t] = sparrow_clampf(acc[i][t] + bias, a->lo, a->hi);
      }
    }
  }
}
