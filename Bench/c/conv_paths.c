/* One k x k convolution (one image, dense weight) three ways, timed alternately on one thread:
 * im2col + OpenBLAS (the "dense" format), the packed 6x16 kernel reading the image window (the
 * "packed" format) and the dense direct convolution (Kernels/conv/dconv). Prints medians of 31
 * rounds, GF/s and the largest difference to the im2col result. Build against a release build's
 * kernel objects (Bench/c/README.md):
 *   conv_paths CIN H W COUT K STRIDE PAD */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "sparrow_kernels.h"

int main(int argc, char** argv) {
  if (argc != 8) {
    fprintf(stderr, "usage: %s CIN H W COUT K STRIDE PAD\n", argv[0]);
    return 2;
  }
  const size_t C = atoi(argv[1]), H = atoi(argv[2]), W = atoi(argv[3]), M = atoi(argv[4]), k = atoi(argv[5]);
  const size_t st = atoi(argv[6]), pd = atoi(argv[7]);
  sparrow_dwconv_shape sh = {
      C, 1, H, W, k, k, st, st, 1, 1, pd, pd, (H + 2 * pd - k) / st + 1, (W + 2 * pd - k) / st + 1};
  const size_t K = C * k * k, N = sh.ho * sh.wo;
  float* w = malloc(M * K * 4);
  float* x = malloc(C * H * W * 4);
  float* bias = malloc(M * 4);
  for (size_t i = 0; i < M * K; i++) w[i] = rnd();
  for (size_t i = 0; i < C * H * W; i++) x[i] = rnd();
  for (size_t i = 0; i < M; i++) bias[i] = rnd();
  float* col = alloc64(K * N * 4);
  float* y[3] = {alloc64(M * N * 4), alloc64(M * N * 4), alloc64(M * N * 4)};
  sparrow_matrix *md, *mg;
  sparrow_direct_conv* dc;
  if (sparrow_pack(w, M, K, SPARROW_FORMAT_DENSE, NULL, &md) || sparrow_pack(w, M, K, SPARROW_FORMAT_GEMM, NULL, &mg) ||
      sparrow_direct_conv_create_dense(&sh, M, w, &dc)) {
    fprintf(stderr, "setup failed: %s\n", sparrow_last_error());
    return 1;
  }
  const size_t wsd = sparrow_spmm_workspace_bytes(md, N, 0, 0), wsg = sparrow_spmm_workspace_bytes(mg, N, 0, 0);
  const size_t wsc = sparrow_direct_conv_workspace_bytes(dc);
  void *bd = alloc64(wsd + 64), *bg = alloc64(wsg + 64), *bc = alloc64(wsc + 64);
  sparrow_spmm_call cd = {col, N * 4, y[0], N * 4, N, bias, 0, INFINITY, NULL, 0, NULL, 0, 0, bd, wsd, NULL};
  sparrow_spmm_call cg = {x, N * 4, y[1], N * 4, N, bias, 0, INFINITY, NULL, 0, NULL, 0, 0, bg, wsg, &sh};
  double t[3][31];
  for (int it = 0; it < 31; it++) {
    double a = now();
    sparrow_im2col(&sh, x, 0, C, col);
    if (sparrow_spmm(md, &cd, 1)) return 1;
    double b = now();
    if (sparrow_spmm(mg, &cg, 1)) return 1;
    double c = now();
    if (sparrow_direct_conv_run(dc, x, bias, 0, INFINITY, y[2], bc, wsc, 1)) return 1;
    double d = now();
    t[0][it] = b - a, t[1][it] = c - b, t[2][it] = d - c;
  }
  double err = 0;
  for (size_t v = 1; v < 3; v++)
    for (size_t i = 0; i < M * N; i++) err = fmax(err, fabs(y[v][i] - y[0][i]));
  for (int v = 0; v < 3; v++) qsort(t[v], 31, sizeof(double), cmpd);
  const double fl = 2.0 * M * N * K;
  printf("| %zux%zux%zu -> %zu, %zux%zu/%zu | %.3f (%.0f) | %.3f (%.0f) | %.3f (%.0f) | %.1g |\n", C, H, W, M, k, k, st,
         t[0][15] * 1e3, fl / t[0][15] * 1e-9, t[1][15] * 1e3, fl / t[1][15] * 1e-9, t[2][15] * 1e3,
         fl / t[2][15] * 1e-9, err);
  return 0;
}
