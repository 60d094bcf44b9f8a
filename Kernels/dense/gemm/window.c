/* The packed-GEMM kernels' window driver (gemm.h): a k x k convolution multiplied straight from
 * the image. The im2col rows of a column block are built one K-slice at a time into the
 * kernel's stack panel (the copy the kernels already make of an unfolded matrix), so the
 * K x N unfolded matrix is never written to memory and read back. */
#include "gemm.h"

#include "../../conv/window.h"

void sparrow_gemm_window(const sparrow_matrix* w, const uint32_t* units, size_t u0, size_t u1,
                         const sparrow_ukernel_args* a, size_t mr, size_t nr, size_t kc_max, size_t mc_panels,
                         float* xp, sparrow_gemm_block_fn block) {
  const size_t K = w->k, n = a->n, ys = a->y_stride / sizeof(float);
  const size_t slices = sparrow_div_up(K, kc_max), kcs = sparrow_div_up(K, slices);
  for (size_t kb = 0; kb < K; kb += kcs) {
    const size_t kc = K - kb < kcs ? K - kb : kcs;
    const int first = kb == 0, last = kb + kc == K;
    for (size_t g0 = u0; g0 < u1; g0 += mc_panels) {
      const size_t g1 = u1 - g0 < mc_panels ? u1 : g0 + mc_panels;
      for (size_t j0 = 0; j0 < n; j0 += nr) {
        const size_t cols = n - j0 < nr ? n - j0 : nr;
        sparrow_window_panel(a->win, a->x, a->col0 + j0, cols, kb, kb + kc, a->k_mask, xp, nr);
        for (size_t u = g0; u < g1; u++) {
          const size_t p = sparrow_gemm_panel(units, u);
          block(kc, w->u.gemm.w + (p * K + kb) * mr, xp, cols, a->y + p * mr * ys + j0, ys,
                sparrow_gemm_rows(w->m, p, mr), a->bias != NULL ? a->bias + p * mr : NULL, a->lo, a->hi, first, last);
        }
      }
    }
  }
}
