/* int8 convolution X packing whole vs in bands of output rows (issue 19; QLinearConvKernelStep's
 * bandBytes): per ResNet-18 3x3 layer shape, the tap-major pack of the whole image then the int8
 * kernel, against the planes once and then each band packed and multiplied, 64 MB of memory
 * written between runs so every run starts with cold caches as in a model; medians of 21 runs,
 * outputs compared byte for byte.
 *
 *   int8_bands [SPARSITY [BAND_KB]]   # 0: the dense VNNI/AVX2 kernel; > 0: that share of zero
 *                                     # weights on the 1x4-sparse kernel; bands of BAND_KB (256)
 * Build as Bench/c/README.md says (the kernel objects of a release build). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "sparrow_qgemm.h"
#include "sparrow_kernels.h"
static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}
static int cmp(const void* a, const void* b) {
  double x = *(double*)a, y = *(double*)b;
  return x < y ? -1 : x > y;
}
#define R 21
int main(int argc, char** argv) {
  double sp = argc > 1 ? atof(argv[1]) : 0;
  size_t budget = argc > 2 ? atoi(argv[2]) * 1024 : 262144;
  size_t L[][4] = {{64, 64, 56, 1},   {64, 128, 56, 2},  {128, 128, 28, 1}, {128, 256, 28, 2},
                   {256, 256, 14, 1}, {256, 512, 14, 2}, {512, 512, 7, 1}};
  size_t ki = sparrow_qgemm_auto(), si = sparrow_qspmm_auto();
  double tot[2] = {0};
  char* big = malloc(64 << 20);
  for (int l = 0; l < 7; l++) {
    size_t c = L[l][0], m = L[l][1], h = L[l][2], s = L[l][3];
    size_t ho = (h + 2 - 3) / s + 1, wo = ho, n = ho * wo, k = c * 9;
    uint8_t* x = malloc(c * h * h);
    for (size_t i = 0; i < c * h * h; i++) x[i] = rand();
    int8_t* w = malloc(m * k);
    for (size_t i = 0; i < m * k; i++) {
      w[i] = rand() % 255 - 127;
      if ((double)rand() / RAND_MAX < sp) w[i] = 0;
    }
    size_t wb = sparrow_qgemm_pack_conv_c4_work_bytes(c, 3, 3, s, s, 1, 1, ho, wo);
    uint8_t* work = aligned_alloc(64, (wb + 63) & ~63ul);
    uint8_t* xp = aligned_alloc(64, (sparrow_qgemm_packed_x_bytes(k, n) + 63) & ~63ul);
    void* wp = aligned_alloc(64, (sparrow_qgemm_kernel_packed_bytes(ki, m, k) + 63) & ~63ul);
    int32_t* rs = malloc(4 * m);
    sparrow_qgemm_kernel_pack_w(ki, w, m, k, k, 1, wp, rs);
    size_t nb = sparrow_qspmm_blocks(w, m, k, k, 1);
    uint32_t *rp = malloc(4 * (m + 1)), *g = malloc(4 * nb + 4);
    int8_t* wd = malloc(4 * nb + 4);
    sparrow_qspmm_pack_w(w, m, k, k, 1, rp, g, wd, rs);
    int sparse = sp > 0;
    float* sc = malloc(4 * m);
    for (size_t i = 0; i < m; i++) sc[i] = 0.0005f;
    uint8_t *y1 = malloc(m * n), *y2 = malloc(m * n);
    sparrow_qgemm_epilogue e = {rs, 3, NULL, sc, NULL, 100, 0, 255, 0, 0, SPARROW_QOUT_U8, y1, (ptrdiff_t)n, 1};
    size_t panels = (m + 3) / 4;
    double t[2][R];
    size_t band = budget / (k * wo);
    if (band < 1) band = 1;
    for (int r = 0; r < R; r++) {
      memset(big, r, 64 << 20); /* cold caches as in a model */
      double t0 = now();
      sparrow_qgemm_pack_conv_c4(x, c, h, h, 3, 3, s, s, 1, 1, 1, 1, ho, wo, 3, 0, work, xp);
      e.y = y1;
      if (sparse)
        sparrow_qspmm_run(si, rp, g, wd, 0, m, xp, n, &e);
      else
        sparrow_qgemm_run(ki, wp, m, k, 0, panels, xp, n, &e);
      t[0][r] = now() - t0;
      memset(big, r + 1, 64 << 20);
      t0 = now();
      sparrow_qgemm_pack_conv_c4_planes(x, c, h, h, 3, 3, s, s, 1, 1, 1, 1, ho, wo, 3, 0, work);
      for (size_t oy = 0; oy < ho; oy += band) {
        size_t oy1 = oy + band < ho ? oy + band : ho;
        sparrow_qgemm_pack_conv_c4_rows(work, c, 3, 3, s, s, 1, 1, ho, wo, oy, oy1, xp);
        e.y = y2 + oy * wo;
        size_t nn = (oy1 - oy) * wo;
        if (sparse)
          sparrow_qspmm_run(si, rp, g, wd, 0, m, xp, nn, &e);
        else
          sparrow_qgemm_run(ki, wp, m, k, 0, panels, xp, nn, &e);
      }
      t[1][r] = now() - t0;
    }
    for (int v = 0; v < 2; v++) {
      qsort(t[v], R, sizeof(double), cmp);
      tot[v] += t[v][R / 2];
    }
    printf("%3zu->%3zu %2zux%-2zu s%zu band %2zu: whole %.3f banded %.3f eq %d\n", c, m, h, h, s, band,
           t[0][R / 2] * 1e3, t[1][R / 2] * 1e3, !memcmp(y1, y2, m * n));
  }
  printf("total whole %.3f banded %.3f\n", tot[0] * 1e3, tot[1] * 1e3);
}
