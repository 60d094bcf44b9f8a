/* int8 convolution: the tap-major GEMM (planes, then bands of packed columns multiplied by the
 * dense VNNI/AVX2 kernel: QLinearConvKernelStep's path) against the direct kernel on the planes
 * (sparrow_qconv_*, no unfolded copy), per ResNet-18 3x3 layer shape; 64 MB written between runs
 * so every run starts with cold caches as in a model; medians of 21 alternated runs, outputs
 * compared byte for byte (issue 19).
 *
 *   int8_direct [QCONV_ENTRY]   # default: the entry the active ISA chooses
 * Build as Bench/c/README.md says (the kernel objects of a release build). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "sparrow_kernels.h"
#include "sparrow_qgemm.h"
#define R 21
int main(int argc, char** argv) {
  size_t L[][4] = {{64, 64, 56, 1},   {64, 128, 56, 2},  {128, 128, 28, 1}, {128, 256, 28, 2},
                   {256, 256, 14, 1}, {256, 512, 14, 2}, {512, 512, 7, 1}};
  size_t ki = sparrow_qgemm_auto(), ci = argc > 1 ? (size_t)atoi(argv[1]) : sparrow_qconv_auto();
  printf("gemm %s, direct %s\n", sparrow_qgemm_name(ki), sparrow_qconv_name(ci));
  double tot[2] = {0};
  char* big = malloc(64 << 20);
  for (int l = 0; l < 7; l++) {
    size_t c = L[l][0], m = L[l][1], h = L[l][2], s = L[l][3];
    size_t ho = (h + 2 - 3) / s + 1, wo = ho, n = ho * wo, k = c * 9;
    uint8_t* x = malloc(c * h * h);
    for (size_t i = 0; i < c * h * h; i++) x[i] = rand();
    int8_t* w = malloc(m * k);
    for (size_t i = 0; i < m * k; i++) w[i] = rand() % 255 - 127;
    size_t wb = sparrow_qgemm_pack_conv_c4_work_bytes(c, 3, 3, s, s, 1, 1, ho, wo);
    uint8_t* work = aligned_alloc(64, (wb + 63) & ~63ul);
    uint8_t* xp = aligned_alloc(64, (sparrow_qgemm_packed_x_bytes(k, n) + 63) & ~63ul);
    void* wp = aligned_alloc(64, (sparrow_qgemm_kernel_packed_bytes(ki, m, k) + 63) & ~63ul);
    uint32_t cmr = sparrow_qconv_mr(ci);
    int8_t* wc = aligned_alloc(64, (sparrow_qgemm_packed_bytes(m, k, cmr) + 63) & ~63ul);
    int32_t *rs = malloc(4 * m), *rs2 = malloc(4 * m);
    sparrow_qgemm_kernel_pack_w(ki, w, m, k, k, 1, wp, rs);
    sparrow_qgemm_pack_w(w, m, k, k, 1, cmr, wc, rs2);
    float* sc = malloc(4 * m);
    for (size_t i = 0; i < m; i++) sc[i] = 0.0005f;
    uint8_t *y1 = malloc(m * n), *y2 = malloc(m * n);
    sparrow_qgemm_epilogue e = {rs, 3, NULL, sc, NULL, 100, 0, 255, 0, 0, SPARROW_QOUT_U8, y1, (ptrdiff_t)n, 1};
    size_t panels = (m + sparrow_qgemm_mr(ki) - 1) / sparrow_qgemm_mr(ki), cpanels = (m + cmr - 1) / cmr;
    double t[2][R];
    size_t band = (256 << 10) / (k * wo);
    if (band < 1) band = 1;
    for (int r = 0; r < R; r++) {
      memset(big, r, 64 << 20);
      double t0 = now();
      sparrow_qgemm_pack_conv_c4_planes(x, c, h, h, 3, 3, s, s, 1, 1, 1, 1, ho, wo, 3, 0, work);
      for (size_t oy = 0; oy < ho; oy += band) {
        size_t oy1 = oy + band < ho ? oy + band : ho;
        sparrow_qgemm_pack_conv_c4_rows(work, c, 3, 3, s, s, 1, 1, ho, wo, oy, oy1, xp);
        e.y = y1 + oy * wo;
        sparrow_qgemm_run(ki, wp, m, k, 0, panels, xp, (oy1 - oy) * wo, &e);
      }
      t[0][r] = now() - t0;
      memset(big, r + 1, 64 << 20);
      t0 = now();
      sparrow_qgemm_pack_conv_c4_planes(x, c, h, h, 3, 3, s, s, 1, 1, 1, 1, ho, wo, 3, 0, work);
      e.y = y2;
      sparrow_qconv_run(ci, wc, m, c, 3, 3, s, s, 1, 1, ho, wo, work, 0, cpanels, 0, n, &e);
      t[1][r] = now() - t0;
    }
    for (int v = 0; v < 2; v++) {
      qsort(t[v], R, sizeof(double), cmpd);
      tot[v] += t[v][R / 2];
    }
    printf("%3zu->%3zu %2zux%-2zu s%zu: gemm %.3f direct %.3f (%.0f G MAC/s) eq %d\n", c, m, h, h, s, t[0][R / 2] * 1e3,
           t[1][R / 2] * 1e3, (double)m * k * n / t[1][R / 2] * 1e-9, !memcmp(y1, y2, m * n));
  }
  printf("total gemm %.3f direct %.3f\n", tot[0] * 1e3, tot[1] * 1e3);
}
