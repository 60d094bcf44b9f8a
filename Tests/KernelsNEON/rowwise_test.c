/* Row-wise kernels (softmax, GELU erf/tanh, layer normalisation): every registered kernel this
 * CPU runs, and the automatic choice, through the row driver (strides, per-row mask offsets,
 * several tasks) against double-precision references on sizes that reach each kernel's wide,
 * narrow and tail paths; plus NaN, -inf and fully masked rows. Tolerances (per value):
 *   softmax   |y - ref| <= 1e-8 + 1e-5 |ref|  (a sum of up to 700 exps in float)
 *   GELU      |y - ref| <= 2e-6 + 1e-5 |ref|  (erf: |error| <= 3.4e-7 times |x|/2)
 *   layernorm |y - ref| <= 1e-5 + 1e-5 |ref|, and the same for mean and 1/stddev. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "neon_test.h"
#include "sparrow_kernels.h"

static uint64_t rw_state;
static uint64_t rw_next(void) {
  uint64_t z = (rw_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static size_t rw_int(size_t lo, size_t hi) { return lo + (size_t)(rw_next() % (hi - lo + 1)); }
static float rw_float(float lo, float hi) { return lo + (hi - lo) * (float)((double)(rw_next() >> 11) / 9007199254740992.0); }

static const char* op_name(int op) {
  static const char* names[] = {"softmax", "gelu_erf", "gelu_tanh", "layernorm"};
  return op >= 0 && op < 4 ? names[op] : "?";
}

/* Reference for one row (double); stats[2] for layernorm. */
static void reference(int op, size_t n, const float* x, float alpha, const float* mask, const float* scale,
                      const float* bias, float eps, double* ref, double* stats) {
  switch (op) {
    case SPARROW_ROW_SOFTMAX: {
      double m = -INFINITY;
      int nan = 0;
      for (size_t i = 0; i < n; i++) {
        /* alpha * x + mask rounded once to float, as the kernels' FMA (and ORT's Add) do. */
        ref[i] = (float)((double)alpha * x[i] + (mask != NULL ? (double)mask[i] : 0.0));
        if (isnan(ref[i])) nan = 1;
        if (ref[i] > m) m = ref[i];
      }
      double sum = 0;
      for (size_t i = 0; i < n; i++) sum += (ref[i] = exp(ref[i] - m));
      for (size_t i = 0; i < n; i++) ref[i] = nan ? NAN : ref[i] / sum;
      break;
    }
    case SPARROW_ROW_GELU_ERF:
      for (size_t i = 0; i < n; i++) ref[i] = 0.5 * x[i] * (1.0 + erf(x[i] / sqrt(2.0)));
      break;
    case SPARROW_ROW_GELU_TANH:
      for (size_t i = 0; i < n; i++) {
        const double v = x[i];
        ref[i] = 0.5 * v * (1.0 + tanh(sqrt(2.0 / 3.14159265358979323846) * (v + 0.044715 * v * v * v)));
      }
      break;
    case SPARROW_ROW_LAYERNORM: {
      double mean = 0, var = 0;
      for (size_t i = 0; i < n; i++) mean += x[i];
      mean /= (double)n;
      for (size_t i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
      var /= (double)n;
      const double r = 1.0 / sqrt(var + eps);
      for (size_t i = 0; i < n; i++)
        ref[i] = (x[i] - mean) * r * (scale != NULL ? scale[i] : 1.0) + (bias != NULL ? bias[i] : 0.0);
      stats[0] = mean;
      stats[1] = r;
      break;
    }
  }
}

static int close_enough(int op, float got, double ref) {
  if (isnan(ref)) return isnan(got);
  const double d = fabs((double)got - ref), a = fabs(ref);
  switch (op) {
    case SPARROW_ROW_SOFTMAX: return d <= 1e-8 + 1e-5 * a;
    case SPARROW_ROW_LAYERNORM: return d <= 1e-5 + 1e-5 * a;
    default: return d <= 2e-6 + 1e-5 * a;
  }
}

static const size_t edge_sizes[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 128, 384};

/* One case: `rows` rows of n with gaps between them, the mask per row from a small table. */
static void run_case(int op, size_t rows, size_t n, int special, int scalar_only) {
  const size_t xs = n + rw_int(0, 3), ys = n + rw_int(0, 3), mask_rows = rw_int(1, 3);
  float* x = malloc(rows * xs * sizeof(float));
  float* y = malloc(rows * ys * sizeof(float));
  float* mask = malloc(mask_rows * n * sizeof(float));
  uint32_t* mask_of = malloc(rows * sizeof(uint32_t));
  float* scale = malloc(n * sizeof(float));
  float* bias = malloc(n * sizeof(float));
  float* mean = malloc(rows * sizeof(float));
  float* inv = malloc(rows * sizeof(float));
  double* ref = malloc(n * sizeof(double));
  const float xr = op == SPARROW_ROW_LAYERNORM ? 3.0f : 8.0f;
  const float offset = op == SPARROW_ROW_LAYERNORM ? rw_float(-4, 4) : 0.0f;
  for (size_t i = 0; i < rows * xs; i++) x[i] = offset + rw_float(-xr, xr);
  for (size_t i = 0; i < mask_rows * n; i++) {
    const size_t k = rw_int(0, 9);
    mask[i] = k == 0 ? -3.4028234663852886e38f : (k == 1 ? -INFINITY : rw_float(-2, 0));
  }
  for (size_t r = 0; r < rows; r++) mask_of[r] = (uint32_t)(rw_int(0, mask_rows - 1) * n);
  for (size_t i = 0; i < n; i++) scale[i] = rw_float(-2, 2), bias[i] = rw_float(-1, 1);
  const float alphas[] = {1.0f, 0.125f, -0.5f, 0.17677669f};
  const float alpha = alphas[rw_int(0, 3)];
  const int use_mask = op == SPARROW_ROW_SOFTMAX && rw_int(0, 2) > 0;
  const int use_scale = rw_int(0, 2) > 0, use_bias = rw_int(0, 2) > 0;
  const float eps = rw_int(0, 1) ? 1e-5f : 1e-12f;
  if (special == 1 && n > 1) x[(rows - 1) * xs + rw_int(0, n - 1)] = NAN;
  if (special == 2 && use_mask)
    for (size_t i = 0; i < n; i++) mask[mask_of[0] + i] = -3.4028234663852886e38f; /* fully masked row 0 */
  if (special == 3 && op != SPARROW_ROW_SOFTMAX && op != SPARROW_ROW_LAYERNORM) {
    const float big[] = {0.0f, -0.0f, 1e20f, -1e20f, 30.0f, -30.0f, 1e-30f};
    for (size_t i = 0; i < n && i < 7; i++) x[i] = big[i];
  }
  snprintf(g_case, sizeof g_case, "%s rows %zu n %zu (strides %zu, %zu) mask %d scale %d bias %d special %d",
           op_name(op), rows, n, xs, ys, use_mask, use_scale, use_bias, special);
  const size_t nk = sparrow_row_ukernel_count();
  for (size_t k = 0; k <= nk; k++) {
    const int automatic = k == nk;
    if (!automatic && (sparrow_row_ukernel_op(k) != op || !sparrow_row_ukernel_runnable(k))) continue;
    if (!automatic && scalar_only && strstr(sparrow_row_ukernel_name(k), "__scalar") == NULL) continue;
    const char* name = automatic ? "(automatic choice)" : sparrow_row_ukernel_name(k);
    memset(y, 0xFF, rows * ys * sizeof(float));
    sparrow_rows_call c = {.op = (sparrow_row_op)op, .ukernel = automatic ? SPARROW_ROW_AUTO : k, .rows = rows,
                           .n = n, .rows_per_task = rw_int(1, rows), .x = x, .x_stride = xs * sizeof(float),
                           .y = y, .y_stride = ys * sizeof(float), .alpha = alpha,
                           .mask = use_mask ? mask : NULL, .mask_rows = use_mask ? mask_of : NULL,
                           .scale = use_scale ? scale : NULL, .bias = use_bias ? bias : NULL, .epsilon = eps,
                           .mean = mean, .inv_std = inv};
    for (size_t t = sparrow_rows_tasks(&c); t-- > 0;) sparrow_rows_task(&c, t); /* any order */
    int bad = 0;
    for (size_t r = 0; r < rows && !bad; r++) {
      double stats[2] = {0, 0};
      reference(op, n, x + r * xs, alpha, use_mask ? mask + mask_of[r] : NULL, use_scale ? scale : NULL,
                use_bias ? bias : NULL, eps, ref, stats);
      for (size_t i = 0; i < n && !bad; i++)
        if (!close_enough(op, y[r * ys + i], ref[i])) {
          fail("%s: row %zu y[%zu] = %.9g, expected %.9g", name, r, i, (double)y[r * ys + i], ref[i]);
          bad = 1;
        }
      for (size_t i = n; i < ys && r + 1 < rows && !bad; i++) {
        uint32_t bits;
        memcpy(&bits, &y[r * ys + i], 4);
        if (bits != 0xFFFFFFFFu) {
          fail("%s: row %zu wrote past its end (column %zu)", name, r, i);
          bad = 1;
        }
      }
      if (op == SPARROW_ROW_LAYERNORM && !bad &&
          (!close_enough(op, mean[r], stats[0]) || !close_enough(op, inv[r], stats[1]))) {
        fail("%s: row %zu stats %.9g %.9g, expected %.9g %.9g", name, r, (double)mean[r], (double)inv[r], stats[0],
             stats[1]);
        bad = 1;
      }
      if (op == SPARROW_ROW_SOFTMAX && use_mask && !bad)
        for (size_t i = 0; i < n; i++)
          if (mask[mask_of[r] + i] == -INFINITY && !isnan(ref[i]) && y[r * ys + i] != 0.0f) {
            fail("%s: row %zu y[%zu] = %g under a -inf mask, expected exactly 0", name, r, i, (double)y[r * ys + i]);
            bad = 1;
            break;
          }
    }
    if (!bad) g_passed++;
  }
  free(x), free(y), free(mask), free(mask_of), free(scale), free(bias), free(mean), free(inv), free(ref);
}

void test_rowwise(uint64_t seed, long cases, int scalar_only) {
  rw_state = seed ^ 0x50F7A4ull;
  const size_t passed_before = g_passed;
  for (long i = 0; i < cases; i++) {
    g_case_index = i;
    const int op = (int)(i % 4);
    const size_t n = i < 4 * 19 ? edge_sizes[i / 4] : rw_int(1, 700);
    run_case(op, rw_int(1, 5), n, (int)rw_int(0, 4), scalar_only);
  }
  g_case_index = -1;
  g_case[0] = 0;
  printf("  %-34s %6zu checks passed (%s, %s, %s, %s)\n", "row-wise kernels", g_passed - passed_before,
         sparrow_row_ukernel_name(sparrow_row_ukernel_auto(SPARROW_ROW_SOFTMAX)),
         sparrow_row_ukernel_name(sparrow_row_ukernel_auto(SPARROW_ROW_GELU_ERF)),
         sparrow_row_ukernel_name(sparrow_row_ukernel_auto(SPARROW_ROW_GELU_TANH)),
         sparrow_row_ukernel_name(sparrow_row_ukernel_auto(SPARROW_ROW_LAYERNORM)));
}
