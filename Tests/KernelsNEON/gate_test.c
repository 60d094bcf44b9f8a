/* Input-gated linear kernels (Kernels/gate): every registered kernel this CPU runs, and the
 * automatic choice, through the driver (tiles of 1 to 8 tokens, column blocks automatic or of 1 to n outputs, 1 to 3
 * threads, bias or none, a threshold per token or one for all, output widths reaching every vector tail) against a
 * plain loop that masks the inputs (|x| < threshold -> 0) and multiplies densely in double. The weight is dense or
 * sparse (the CSC kernels get it compressed, zeros included at random); thresholds include 0 (nothing skipped) and a
 * value above every input (everything skipped: bias only), and NaN inputs (always kept; times a zero the sparse weight
 * does not store, they add nothing). Tolerance |y - ref| <= 1e-5 + 1e-4 |ref| (DESIGN.md's kernel bound). */
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
  const size_t rows = gt_int(1, 19), k = gt_int(1, gt_int(0, 2) ? 70 : 250), n = gt_int(1, gt_int(0, 2) ? 70 : 140);
  const size_t tile = gt_int(1, SPARROW_GATE_MAX_ROWS);
  const size_t col_block = gt_int(0, 1) ? 0 : gt_int(1, n);
  const int threads = (int)gt_int(1, 3);
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
  void* work = aligned_alloc(64, (sparrow_gated_workspace_bytes(rows, k, tile) + 63) / 64 * 64);
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
                          work,
                          col_block,
                          threads};
  snprintf(g_case, sizeof g_case,
           "%s rows %zu k %zu n %zu tile %zu col block %zu threads %d zeros %.2f bias %d per-row %d",
           kernel == SPARROW_GATE_AUTO ? (kind ? "auto csc" : "auto dense") : sparrow_gate_ukernel_name(kernel), rows,
           k, n, tile, col_block, threads, zeros, use_bias, per_row);
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

/* The gathered GEMM (kind ROWS) through its driver: random kept rows and channels (or all),
 * X as rows or as a 3x3 window (stride 1 or 2, padding 1), bias and a gate scale or none,
 * against a plain loop in double; unlisted rows must be exact zeros. */
static void gather_case(size_t kernel, long index) {
  const int windowed = (int)gt_int(0, 1);
  const size_t cin = gt_int(1, 9), m = gt_int(1, 13), h = gt_int(1, 9), wd = gt_int(1, 9);
  const size_t stride = windowed ? gt_int(1, 2) : 1, kk = windowed ? 9 : 1, k = cin * kk;
  const size_t ho = windowed ? (h + 2 - 3) / stride + 1 : h, wo = windowed ? (wd + 2 - 3) / stride + 1 : wd;
  const size_t n = ho * wo, xs = windowed ? 0 : n + gt_int(0, 3), ys = n + gt_int(0, 3);
  float* x = malloc((windowed ? cin * h * wd : k * xs) * sizeof(float));
  float* w = malloc(m * k * sizeof(float));
  float* y = malloc(m * ys * sizeof(float));
  float *bias = malloc(m * sizeof(float)), *scale = malloc(m * sizeof(float));
  uint32_t *rows = malloc(m * sizeof(uint32_t)), *chans = malloc(cin * sizeof(uint32_t));
  for (size_t i = 0; i < (windowed ? cin * h * wd : k * xs); i++) x[i] = gt_float(-2, 2);
  for (size_t i = 0; i < m * k; i++) w[i] = gt_float(-1, 1);
  for (size_t i = 0; i < m; i++) bias[i] = gt_float(-1, 1), scale[i] = gt_float(0, 2);
  size_t nr = 0, nc = 0;
  for (size_t r = 0; r < m; r++)
    if (gt_int(0, 2) != 0) rows[nr++] = (uint32_t)r;
  for (size_t ch = 0; ch < cin; ch++)
    if (gt_int(0, 2) != 0) chans[nc++] = (uint32_t)ch;
  const int list_rows = (int)gt_int(0, 3) != 0, list_chans = (int)gt_int(0, 3) != 0;
  const int use_bias = (int)gt_int(0, 1), use_scale = (int)gt_int(0, 1);
  const float lo = gt_int(0, 1) ? 0.0f : -INFINITY, hi = INFINITY;
  sparrow_dwconv_shape win = {cin, 1, h, wd, 3, 3, stride, stride, 1, 1, 1, 1, ho, wo};
  void* work = aligned_alloc(64, (sparrow_gather_workspace_bytes(m, k) + 63) / 64 * 64);
  for (size_t i = 0; i < m * ys; i++) y[i] = NAN;
  sparrow_gather_call c = {.m = m,
                           .k = k,
                           .n = n,
                           .w = w,
                           .out_rows = list_rows ? rows : NULL,
                           .n_out_rows = nr,
                           .in_channels = list_chans ? chans : NULL,
                           .n_in_channels = nc,
                           .k_per_channel = kk,
                           .x = x,
                           .x_stride = xs * sizeof(float),
                           .x_window = windowed ? &win : NULL,
                           .y = y,
                           .y_stride = ys * sizeof(float),
                           .bias = use_bias ? bias : NULL,
                           .scale = use_scale ? scale : NULL,
                           .lo = lo,
                           .hi = hi,
                           .ukernel = kernel,
                           .workspace = work};
  snprintf(g_case, sizeof g_case, "%s window %d cin %zu m %zu n %zu rows %d/%zu chans %d/%zu",
           kernel == SPARROW_GATE_AUTO ? "auto rows" : sparrow_gate_ukernel_name(kernel), windowed, cin, m, n,
           list_rows, nr, list_chans, nc);
  g_case_index = index;
  sparrow_gather_plan p;
  sparrow_gather_prepare(&p, &c, (int)gt_int(1, 3));
  for (size_t t = 0; t < p.tasks; t++) sparrow_gather_task(&p, t);
  sparrow_gather_finish(&p);
  int bad = 0;
  for (size_t r = 0, ri = 0; r < m && !bad; r++) {
    const int kept = !list_rows || (ri < nr && rows[ri] == r);
    if (list_rows && kept) ri++;
    for (size_t j = 0; j < n && !bad; j++) {
      double ref = 0.0;
      if (kept) {
        for (size_t ci = 0; ci < (list_chans ? nc : cin); ci++) {
          const size_t ch = list_chans ? chans[ci] : ci;
          for (size_t t = 0; t < kk; t++) {
            double xv;
            if (windowed) {
              const long iy = (long)((j / wo) * stride + t / 3) - 1, ix = (long)((j % wo) * stride + t % 3) - 1;
              xv = iy < 0 || ix < 0 || iy >= (long)h || ix >= (long)wd ? 0.0
                                                                       : x[(ch * h + (size_t)iy) * wd + (size_t)ix];
            } else {
              xv = x[(ch * kk + t) * xs + j];
            }
            ref += (double)w[r * k + ch * kk + t] * xv;
          }
        }
        ref += use_bias ? bias[r] : 0.0;
        if (ref < lo) ref = lo;
        if (use_scale) ref *= scale[r];
      }
      const float got = y[r * ys + j];
      const int ok = kept ? fabs((double)got - ref) <= 1e-5 + 1e-4 * fabs(ref) : got == 0.0f;
      if (!ok) fail("y[%zu][%zu] = %g, reference %g", r, j, got, ref), bad = 1;
    }
  }
  if (!bad) g_passed++;
  free(x), free(w), free(y), free(bias), free(scale), free(rows), free(chans), free(work);
}

void test_gate(uint64_t seed, long cases, int scalar_only) {
  gt_state = seed ^ 0x6A7E6A7Eull;
  long index = 0;
  for (size_t i = 0; i < sparrow_gate_ukernel_count(); i++) {
    if (!sparrow_gate_ukernel_runnable(i)) continue;
    if (scalar_only && strstr(sparrow_gate_ukernel_name(i), "__scalar") == NULL) continue;
    if (sparrow_gate_ukernel_kind(i) == SPARROW_GATE_ROWS) {
      for (long c = 0; c < cases; c++) gather_case(i, index++);
      continue;
    }
    if (scalar_only && strstr(sparrow_gate_ukernel_name(i), "__scalar") == NULL) continue;
    for (long c = 0; c < cases; c++) run_case(i, index++);
  }
  for (long c = 0; c < cases; c++) run_case(SPARROW_GATE_AUTO, index++);
  for (long c = 0; c < cases; c++) gather_case(SPARROW_GATE_AUTO, index++);
  g_case_index = -1;
  printf("gate kernels: %zu listed, auto dense %s, auto csc %s, auto rows %s\n", sparrow_gate_ukernel_count(),
         sparrow_gate_ukernel_name(sparrow_gate_ukernel_auto(SPARROW_GATE_DENSE)),
         sparrow_gate_ukernel_name(sparrow_gate_ukernel_auto(SPARROW_GATE_CSC)),
         sparrow_gate_ukernel_name(sparrow_gate_ukernel_auto(SPARROW_GATE_ROWS)));
}
