/* Input-gated linear kernels (Kernels/gate): every registered kernel this CPU runs, and the
 * automatic choice, through the driver (tiles of 1 to 4 tokens, bias or none, a threshold per
 * token or one for all, output widths reaching every vector tail) against a plain loop that
 * masks the inputs (|x| < threshold -> 0) and multiplies densely in double. The weight is dense
 * or sparse (the CSC kernels get it compressed, zeros included at random); thresholds include
 * 0 (nothing skipped) and a value above every input (everything skipped: bias only), and NaN
 * inputs (always kept; times a zero the sparse weight does not store, they add nothing). Tolerance |y - ref| <= 1e-5 +
 * 1e-4 |ref| (DESIGN.md's kernel bound). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "neon_test.h"
#include "sparrow_gate_kernels.h"
#include "sparrow_kernels.h"

static uint64_t gt_state;
static uint64_t gt_next(void) {
  uint64_t z = (gt_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static size_t gt_int(size_t lo, size_t hi) { return lo + (size_t)(gt_next() % (hi - lo + 1)); }
static float gt_float(float lo, float hi) {
  return lo + (hi - lo) * (float)((double)(gt_next() >> 11) / 9007199254740992.0);
}

static void run_case(size_t kernel, long index) {
  const int kind = kernel == SPARROW_GATE_AUTO ? (int)gt_int(0, 1) : sparrow_gate_ukernel_kind(kernel);
  const size_t rows = gt_int(1, 9), k = gt_int(1, 70), n = gt_int(1, 70), tile = gt_int(1, SPARROW_GATE_MAX_ROWS);
  const size_t xs = k + gt_int(0, 3), ys = n + gt_int(0, 3), ws = n + gt_int(0, 3);
  const double zeros = (double)gt_int(0, 3) / 4.0; /* weight sparsity 0, .25, .5, .75 */
  float* x = malloc(rows * xs * sizeof(float));
  float* w = malloc(k * ws * sizeof(float));
  float* y = malloc(rows * ys * sizeof(float));
  float* bias = malloc(n * sizeof(float));
  float* thr = malloc(rows * sizeof(float));
  uint32_t* ptr = malloc((k + 1) * sizeof(uint32_t));
  uint32_t* out_rows = malloc(k * n * sizeof(uint32_t) + 4);
  float* vals = malloc(k * n * sizeof(float) + 4);
  for (size_t i = 0; i < rows * xs; i++) x[i] = gt_float(-2, 2);
  if (gt_int(0, 4) == 0) x[gt_int(0, rows - 1) * xs + gt_int(0, k - 1)] = NAN;
  for (size_t i = 0; i < k * ws; i++) w[i] = (double)gt_float(0, 1) < zeros ? 0.0f : gt_float(-1, 1);
  for (size_t i = 0; i < n; i++) bias[i] = gt_float(-1, 1);
  const int use_bias = gt_int(0, 1), per_row = gt_int(0, 1);
  for (size_t r = 0; r < rows; r++) {
    const size_t pick = gt_int(0, 5);
    thr[r] = pick == 0 ? 0.0f : (pick == 1 ? 3.0f : gt_float(0, 2));
  }
  uint32_t nz = 0;
  for (size_t i = 0; i < k; i++) {
    ptr[i] = nz;
    for (size_t o = 0; o < n; o++)
      if (w[i * ws + o] != 0.0f) out_rows[nz] = (uint32_t)o, vals[nz++] = w[i * ws + o];
  }
  ptr[k] = nz;
  void* work = aligned_alloc(64, (sparrow_gated_workspace_bytes(k, tile) + 63) / 64 * 64);
  for (size_t i = 0; i < rows * ys; i++) y[i] = NAN; /* every output must be written */
  sparrow_gated_call c = {rows,
                          k,
                          n,
                          x,
                          xs * sizeof(float),
                          thr,
                          per_row ? 1 : 0,
                          (sparrow_gate_kind)kind,
                          kernel,
                          w,
                          ws * sizeof(float),
                          ptr,
                          out_rows,
                          vals,
                          use_bias ? bias : NULL,
                          y,
                          ys * sizeof(float),
                          tile,
                          work};
  snprintf(g_case, sizeof g_case, "%s rows %zu k %zu n %zu tile %zu zeros %.2f bias %d per-row %d",
           kernel == SPARROW_GATE_AUTO ? (kind ? "auto csc" : "auto dense") : sparrow_gate_ukernel_name(kernel), rows,
           k, n, tile, zeros, use_bias, per_row);
  g_case_index = index;
  const size_t kept = sparrow_gated_linear(&c);
  size_t want_kept = 0;
  int bad = 0;
  for (size_t r = 0; r < rows && !bad; r++) {
    const float t = thr[per_row ? r : 0];
    for (size_t i = 0; i < k; i++) want_kept += !(fabsf(x[r * xs + i]) < t);
    for (size_t o = 0; o < n && !bad; o++) {
      double ref = use_bias ? bias[o] : 0.0;
      for (size_t i = 0; i < k; i++) {
        const float v = x[r * xs + i];
        /* A sparse weight stores no zeros: a kept NaN times a zero it does not hold adds nothing. */
        if (kind == SPARROW_GATE_CSC && w[i * ws + o] == 0.0f) continue;
        if (!(fabsf(v) < t)) ref += (double)v * w[i * ws + o];
      }
      const float got = y[r * ys + o];
      const int ok = isnan(ref) ? isnan(got) : fabs((double)got - ref) <= 1e-5 + 1e-4 * fabs(ref);
      if (!ok) {
        fail("y[%zu][%zu] = %g, reference %g", r, o, got, ref);
        bad = 1;
      }
    }
  }
  if (!bad && kept != want_kept) fail("kept %zu inputs, reference %zu", kept, want_kept), bad = 1;
  if (!bad) g_passed++;
  free(x), free(w), free(y), free(bias), free(thr), free(ptr), free(out_rows), free(vals), free(work);
}

void test_gate(uint64_t seed, long cases, int scalar_only) {
  gt_state = seed ^ 0x6A7E6A7Eull;
  long index = 0;
  for (size_t i = 0; i < sparrow_gate_ukernel_count(); i++) {
    if (!sparrow_gate_ukernel_runnable(i)) continue;
    if (scalar_only && strstr(sparrow_gate_ukernel_name(i), "__scalar") == NULL) continue;
    for (long c = 0; c < cases; c++) run_case(i, index++);
  }
  for (long c = 0; c < cases; c++) run_case(SPARROW_GATE_AUTO, index++);
  g_case_index = -1;
  printf("gate kernels: %zu listed, auto dense %s, auto csc %s\n", sparrow_gate_ukernel_count(),
         sparrow_gate_ukernel_name(sparrow_gate_ukernel_auto(SPARROW_GATE_DENSE)),
         sparrow_gate_ukernel_name(sparrow_gate_ukernel_auto(SPARROW_GATE_CSC)));
}
