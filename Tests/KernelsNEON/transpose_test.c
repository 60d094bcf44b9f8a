/* The matrix transpose of the active ISA (and the scalar one) against a plain loop, on sizes
 * around the 4/8-wide blocks and their tiles and bands, with row gaps in source and destination
 * (wide destination strides too): exact equality, and nothing written outside the destination's
 * rows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/transpose.h"
#include "neon_test.h"
#include "sparrow_kernels.h"

void test_transpose(uint64_t seed, long cases) {
  uint64_t state = seed ^ 0x7A57ull;
  const size_t passed_before = g_passed;
  for (long i = 0; i < cases; i++) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    const size_t rows = 1 + (size_t)((state >> 33) % 70), cols = 1 + (size_t)((state >> 45) % 70);
    /* Every other case a destination stride of 512 floats or more (the AVX2 form's band order). */
    const size_t ss = cols + (size_t)((state >> 20) % 3),
                 ds = rows + (size_t)((state >> 25) % 3) + ((state >> 28) & 1 ? 512 : 0);
    float* src = malloc(rows * ss * sizeof(float));
    float* dst = malloc(cols * ds * sizeof(float));
    float* ref = malloc(cols * ds * sizeof(float));
    for (size_t k = 0; k < rows * ss; k++) src[k] = (float)k;
    for (int v = 0; v < 2; v++) {
      memset(dst, 0xFF, cols * ds * sizeof(float));
      memset(ref, 0xFF, cols * ds * sizeof(float));
      for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) ref[c * ds + r] = src[r * ss + c];
      snprintf(g_case, sizeof g_case, "transpose %zux%zu strides %zu, %zu (%s)", rows, cols, ss, ds,
               v == 0 ? "active ISA" : "scalar");
      if (v == 0) sparrow_transpose_f32(rows, cols, src, ss, dst, ds);
      else sparrow_transpose_f32__scalar(rows, cols, src, ss, dst, ds);
      if (memcmp(dst, ref, cols * ds * sizeof(float)) != 0) fail("differs from the plain loop");
      else g_passed++;
    }
    free(src), free(dst), free(ref);
  }
  /* On threads: sizes past SPARROW_TRANSPOSE_MT_MIN, bands of 16 columns and a short last one. */
  const size_t big[][2] = {{130, 200}, {100, 333}, {257, 64}, {16, 1030}, {512, 33}};
  for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
    const size_t rows = big[i][0], cols = big[i][1], ss = cols + 1, ds = rows + 2;
    float* src = malloc(rows * ss * sizeof(float));
    float* dst = malloc(cols * ds * sizeof(float));
    float* ref = malloc(cols * ds * sizeof(float));
    for (size_t k = 0; k < rows * ss; k++) src[k] = (float)k;
    memset(ref, 0xFF, cols * ds * sizeof(float));
    for (size_t r = 0; r < rows; r++)
      for (size_t c = 0; c < cols; c++) ref[c * ds + r] = src[r * ss + c];
    for (int threads = 1; threads <= 3; threads++) {
      snprintf(g_case, sizeof g_case, "transpose %zux%zu on %d threads", rows, cols, threads);
      memset(dst, 0xFF, cols * ds * sizeof(float));
      sparrow_transpose_f32_threads(rows, cols, src, ss, dst, ds, threads);
      if (memcmp(dst, ref, cols * ds * sizeof(float)) != 0) fail("differs from the plain loop");
      else g_passed++;
    }
    free(src), free(dst), free(ref);
  }
  g_case[0] = 0;
  printf("  %-34s %6zu checks passed\n", "matrix transpose", g_passed - passed_before);
}
