/* Thread scaling of three convolution paths on one image: the dense direct convolution, the
 * packed 6x16 kernel on the image window, and CSR at 90% zeros on the window. For each thread
 * count in argv[8..], medians of 21 alternated rounds (ms) and the speedup over 1 thread.
 *   conv_threads CIN H W COUT K STRIDE PAD T1 [T2 ...] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "sparrow_kernels.h"

int main(int argc, char** argv) {
  if (argc < 9) {
    fprintf(stderr, "usage: %s CIN H W COUT K STRIDE PAD THREADS...\n", argv[0]);
    return 2;
  }
  harness_state = 11;
  const size_t C = atoi(argv[1]), H = atoi(argv[2]), W = atoi(argv[3]), M = atoi(argv[4]), k = atoi(argv[5]);
  const size_t st = atoi(argv[6]), pd = atoi(argv[7]);
  sparrow_dwconv_shape sh = {
      C, 1, H, W, k, k, st, st, 1, 1, pd, pd, (H + 2 * pd - k) / st + 1, (W + 2 * pd - k) / st + 1};
  const size_t K = C * k * k, N = sh.ho * sh.wo;
  float* w = malloc(M * K * 4);
  float* ws = malloc(M * K * 4);
  float* x = malloc(C * H * W * 4);
  for (size_t i = 0; i < M * K; i++) w[i] = rnd(), ws[i] = rnd() < 0.8f ? 0.0f : w[i]; /* 90% zeros */
  for (size_t i = 0; i < C * H * W; i++) x[i] = rnd();
  float* y = alloc64(M * N * 4);
  sparrow_matrix *mg, *mc;
  sparrow_direct_conv* dc;
  if (sparrow_pack(w, M, K, SPARROW_FORMAT_GEMM, NULL, &mg) || sparrow_pack(ws, M, K, SPARROW_FORMAT_CSR, NULL, &mc) ||
      sparrow_direct_conv_create_dense(&sh, M, w, &dc)) {
    fprintf(stderr, "setup failed: %s\n", sparrow_last_error());
    return 1;
  }
  const size_t wsg = sparrow_spmm_workspace_bytes(mg, N, 0, 0), wsc = sparrow_spmm_workspace_bytes(mc, N, 0, 0);
  const size_t wsd = sparrow_direct_conv_workspace_bytes(dc);
  void *bg = alloc64(wsg + 64), *bc = alloc64(wsc + 64), *bd = alloc64(wsd + 64);
  sparrow_spmm_call cg = {x, N * 4, y, N * 4, N, NULL, 0, INFINITY, NULL, 0, NULL, 0, 0, bg, wsg, &sh};
  sparrow_spmm_call cc = {x, N * 4, y, N * 4, N, NULL, 0, INFINITY, NULL, 0, NULL, 0, 0, bc, wsc, &sh};
  double base[3] = {0, 0, 0};
  for (int a = 8; a < argc; a++) {
    const int threads = atoi(argv[a]);
    double t[3][21];
    for (int it = 0; it < 21; it++) {
      double t0 = now();
      if (sparrow_direct_conv_run(dc, x, NULL, 0, INFINITY, y, bd, wsd, threads)) return 1;
      double t1 = now();
      if (sparrow_spmm(mg, &cg, threads)) return 1;
      double t2 = now();
      if (sparrow_spmm(mc, &cc, threads)) return 1;
      double t3 = now();
      t[0][it] = t1 - t0, t[1][it] = t2 - t1, t[2][it] = t3 - t2;
    }
    for (int v = 0; v < 3; v++) qsort(t[v], 21, sizeof(double), cmpd);
    if (base[0] == 0)
      for (int v = 0; v < 3; v++) base[v] = t[v][10];
    printf("| %zux%zux%zu -> %zu, %zux%zu/%zu | %d | %.3f (%.2fx) | %.3f (%.2fx) | %.3f (%.2fx) |\n", C, H, W, M, k, k,
           st, threads, t[0][10] * 1e3, base[0] / t[0][10], t[1][10] * 1e3, base[1] / t[1][10], t[2][10] * 1e3,
           base[2] / t[2][10]);
  }
  return 0;
}
