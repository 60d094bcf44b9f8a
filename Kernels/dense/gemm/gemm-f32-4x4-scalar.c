/* Packed dense GEMM, portable C, 4 x 4 register block (layout: gemm.h). */
#include "gemm.h"

#define MR 4
#define NR 4
/* Window blocks (gemm.h): 8 columns, K slices of 256 (an 8 KiB stack panel). */
#define WNR 8
#define WKC 256

static void window_block(size_t kc, const float* wp, const float* xp, size_t cols, float* y, size_t ys, size_t rows,
                         const float* bias, float lo, float hi, int first, int last) {
  float acc[MR][WNR] = {{0}};
  for (size_t k = 0; k < kc; k++)
    for (size_t i = 0; i < MR; i++)
      for (size_t j = 0; j < WNR; j++) acc[i][j] += wp[k * MR + i] * xp[k * WNR + j];
  for (size_t i = 0; i < rows; i++) {
    float* yr = y + i * ys;
    const float b = bias != NULL ? bias[i] : 0.0f;
    for (size_t j = 0; j < cols; j++) {
      float v = first ? acc[i][j] : yr[j] + acc[i][j];
      yr[j] = last ? sparrow_clampf(v + b, lo, hi) : v;
    }
  }
}

void sparrow_gemm_f32_4x4__scalar(const sparrow_matrix* w, const uint32_t* units, size_t u0, size_t u1,
                                  const sparrow_ukernel_args* a) {
  const size_t K = w->k, n = a->n, xs = a->x_stride / sizeof(float), ys = a->y_stride / sizeof(float);
  const uint8_t* mask = a->k_mask;
  if (a->win != NULL) {
    float xp[WKC * WNR];
    sparrow_gemm_window(w, units, u0, u1, a, MR, WNR, WKC, 64, xp, window_block);
    return;
  }
  for (size_t j0 = 0; j0 < n; j0 += NR) {
    const size_t nr = n - j0 < NR ? n - j0 : NR;
    for (size_t u = u0; u < u1; u++) {
      const size_t p = sparrow_gemm_panel(units, u);
      const float* wp = w->u.gemm.w + p * K * MR;
      float acc[MR][NR] = {{0}};
      for (size_t k = 0; k < K; k++) {
        if (mask != NULL && !mask[k]) continue;
        const float* xr = a->x + k * xs + j0;
        float xv[NR];
        for (size_t j = 0; j < NR; j++) xv[j] = j < nr ? xr[j] : 0.0f;
        for (size_t i = 0; i < MR; i++)
          for (size_t j = 0; j < NR; j++) acc[i][j] += wp[k * MR + i] * xv[j];
      }
      const size_t rows = sparrow_gemm_rows(w->m, p, MR);
      for (size_t i = 0; i < rows; i++) {
        const size_t r = p * MR + i;
        const float b = a->bias != NULL ? a->bias[r] : 0.0f;
        float* y = a->y + r * ys + j0;
        for (size_t j = 0; j < nr; j++) y[j] = sparrow_clampf(acc[i][j] + b, a->lo, a->hi);
      }
    }
  }
}
