/* CSR x dense, portable scalar: one row at a time, 4 output columns per pass. */
#include "../../pack/formats.h"

#define CSR_ROW_BODY(COL)                                                             \
  for (size_t j = 0; j < a->n; j += 4) {                                              \
    const size_t nb = a->n - j < 4 ? a->n - j : 4;                                    \
    float acc[4] = {bias, bias, bias, bias};                                          \
    for (uint32_t p = p0; p < p1; p++) {                                              \
      const size_t col = (COL)[p];                                                    \
      const float v = c->values[p];                                                   \
      const float* xr = (const float*)((const char*)a->x + col * a->x_stride) + j;    \
      for (size_t t = 0; t < nb; t++) acc[t] += v * xr[t];                            \
    }                                                                                 \
    for (size_t t = 0; t < nb; t++) yr[j + t] = sparrow_clampf(acc[t], a->lo, a->hi); \
  }

void sparrow_spmm_csr_f32_1x4__scalar(const sparrow_matrix* w, const uint32_t* units, size_t u0, size_t u1,
                                      const sparrow_ukernel_args* a) {
  const sparrow_csr* c = &w->u.csr;
  for (size_t u = u0; u < u1; u++) {
    const size_t r = units != NULL ? units[u] : u;
    const float bias = a->bias != NULL ? a->bias[r] : 0.0f;
    float* yr = (float*)((char*)a->y + r * a->y_stride);
    const uint32_t p0 = c->row_ptr[r], p1 = c->row_ptr[r + 1];
    if (c->col16 != NULL) {
      CSR_ROW_BODY(c->col16)
    } else {
      CSR_ROW_BODY(c->col32)
    }
  }
}
