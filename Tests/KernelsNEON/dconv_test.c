/* Dense direct convolution (Kernels/conv/dconv, the dense and pixel modes of
 * sparrow_direct_conv): every registered kernel of the mode and the automatic choice against a
 * plain double-precision loop over the definition, on random windows with output channels past
 * one panel, rows past one 16-pixel block, pixel blocks across row ends and K slices, with and
 * without active-channel lists. Inputs are dyadic, so sums are exact in any order. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "neon_test.h"
#include "sparrow_kernels.h"

static uint64_t dc_state;
static size_t dc_rnd(size_t lo, size_t hi) {
  uint64_t z = (dc_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return lo + (size_t)((z ^ (z >> 31)) % (hi - lo + 1));
}

/* Output channel m's plane; inactive inputs (in_on[c] == 0) count as zero. */
static void reference(const sparrow_dwconv_shape* s, size_t cout, const float* x, const float* w, const float* bias,
                      float lo, float hi, const unsigned char* in_on, float* y) {
  for (size_t m = 0; m < cout; m++)
    for (size_t oy = 0; oy < s->ho; oy++)
      for (size_t ox = 0; ox < s->wo; ox++) {
        double acc = bias ? bias[m] : 0.0;
        for (size_t c = 0; c < s->channels; c++) {
          if (!in_on[c]) continue;
          for (size_t ky = 0; ky < s->kh; ky++)
            for (size_t kx = 0; kx < s->kw; kx++) {
              const long iy = (long)(oy * s->stride_h + ky * s->dilation_h) - (long)s->pad_top;
              const long ix = (long)(ox * s->stride_w + kx * s->dilation_w) - (long)s->pad_left;
              if (iy >= 0 && iy < (long)s->h && ix >= 0 && ix < (long)s->w)
                acc += (double)w[((m * s->channels + c) * s->kh + ky) * s->kw + kx] *
                       x[(c * s->h + (size_t)iy) * s->w + (size_t)ix];
            }
        }
        const float v = (float)acc;
        y[(m * s->ho + oy) * s->wo + ox] = v < lo ? lo : (v > hi ? hi : v);
      }
}

static size_t out_size(size_t in, size_t p0, size_t p1, size_t k, size_t d, size_t st) {
  const size_t ext = (k - 1) * d + 1;
  return in + p0 + p1 < ext ? 0 : (in + p0 + p1 - ext) / st + 1;
}

static size_t kernel_count(int pixel) { return pixel ? sparrow_pconv_ukernel_count() : sparrow_dconv_ukernel_count(); }
static int kernel_runnable(int pixel, size_t k) {
  return pixel ? sparrow_pconv_ukernel_runnable(k) : sparrow_dconv_ukernel_runnable(k);
}
static const char* kernel_name(int pixel, size_t k) {
  return pixel ? sparrow_pconv_ukernel_name(k) : sparrow_dconv_ukernel_name(k);
}

static void run_mode(uint64_t seed, long cases, int scalar_only, int pixel) {
  dc_state = seed ^ (pixel ? 0x9C0417ull : 0xDC0417ull);
  const size_t nk = kernel_count(pixel);
  size_t passed_before = g_passed;
  for (long i = 0; i < cases; i++) {
    sparrow_dwconv_shape s = {0};
    /* Every fifth case: enough channels over wide rows that K splits into slices of input
     * channels (direct.c keeps about 16 KiB of input rows per slice). */
    s.channels = i % 5 == 0 ? dc_rnd(20, 40) : dc_rnd(1, 6);
    s.multiplier = 1;
    s.kh = dc_rnd(1, 5);
    s.kw = dc_rnd(1, 7);
    s.stride_h = dc_rnd(1, 3);
    s.stride_w = dc_rnd(1, 3);
    s.dilation_h = dc_rnd(1, 2);
    s.dilation_w = dc_rnd(1, 2);
    s.h = dc_rnd(1, 10);
    s.w = i % 5 == 0 ? dc_rnd(60, 90) : dc_rnd(1, 80);
    s.pad_top = dc_rnd(0, 2);
    s.pad_left = dc_rnd(0, 3);
    s.ho = out_size(s.h, s.pad_top, dc_rnd(0, 2), s.kh, s.dilation_h, s.stride_h);
    s.wo = out_size(s.w, s.pad_left, dc_rnd(0, 3), s.kw, s.dilation_w, s.stride_w);
    if (s.ho == 0 || s.wo == 0) continue;
    /* Pixel mode: up to five 16-channel panels (multi-panel kernels take four, two and one). */
    const size_t cout = dc_rnd(1, pixel ? 72 : 14), K = s.channels * s.kh * s.kw, ny = cout * s.ho * s.wo;
    snprintf(g_case, sizeof g_case, "%s c%zu->%zu %zux%zu k%zux%zu s%zu,%zu d%zu,%zu p%zu,%zu -> %zux%zu",
             pixel ? "pconv" : "dconv", s.channels, cout, s.h, s.w, s.kh, s.kw, s.stride_h, s.stride_w, s.dilation_h,
             s.dilation_w, s.pad_top, s.pad_left, s.ho, s.wo);
    float* x = malloc(s.channels * s.h * s.w * sizeof(float));
    float* w = malloc(cout * K * sizeof(float));
    float* b = malloc(cout * sizeof(float));
    float* ref = malloc(ny * sizeof(float));
    float* y = malloc(ny * sizeof(float));
    unsigned char* on = malloc(s.channels);
    uint32_t* ins = malloc(s.channels * sizeof(uint32_t));
    uint32_t* outs = malloc(cout * sizeof(uint32_t));
    for (size_t j = 0; j < s.channels * s.h * s.w; j++) x[j] = (float)((int)dc_rnd(0, 64) - 32) / 16.0f;
    for (size_t j = 0; j < cout * K; j++) w[j] = dc_rnd(0, 4) == 0 ? 0.0f : (float)((int)dc_rnd(0, 16) - 8) / 8.0f;
    /* Pixel mode, every fourth case: about half the columns zero in every row (one panel shares
     * them), so the panel is compacted to its kept columns. */
    if (pixel && i % 4 == 3)
      for (size_t j = 0; j < K; j++)
        if (dc_rnd(0, 1) == 0)
          for (size_t m = 0; m < cout; m++) w[m * K + j] = 0.0f;
    for (size_t j = 0; j < cout; j++) b[j] = (float)((int)dc_rnd(0, 8) - 4) / 4.0f;
    const float lo = (i % 3 == 1) ? 0.0f : -INFINITY, hi = (i % 3 == 2) ? 1.5f : INFINITY;
    const float* bias = (i % 5) & 1 ? b : NULL; /* independent of the lists and shared-panel cases */
    /* Cases 2, 3 mod 4: active-channel lists, every other one an output list alone (pixel mode
     * then gathers the kept rows into panels of their own where that pays). */
    const int lists = (i / 2) & 1, in_list = lists && (i / 4) & 1;
    size_t nin = 0, nout = 0;
    for (size_t c = 0; c < s.channels; c++) {
      on[c] = !in_list || dc_rnd(0, 1);
      if (on[c]) ins[nin++] = (uint32_t)c;
    }
    for (size_t m = 0; m < cout; m++)
      if (!lists || dc_rnd(0, 1)) outs[nout++] = (uint32_t)m;
    reference(&s, cout, x, w, bias, lo, hi, on, ref);
    if (lists) /* inactive outputs are exact zeros */
      for (size_t m = 0, q = 0; m < cout; m++) {
        if (q < nout && outs[q] == m) {
          q++;
          continue;
        }
        memset(ref + m * s.ho * s.wo, 0, s.ho * s.wo * sizeof(float));
      }
    sparrow_direct_conv* d = NULL;
    if ((pixel ? sparrow_direct_conv_create_pixel(&s, cout, w, &d)
               : sparrow_direct_conv_create_dense(&s, cout, w, &d)) != SPARROW_OK) {
      fail("valid shape refused: %s", sparrow_last_error());
      free(x), free(w), free(b), free(ref), free(y), free(on), free(ins), free(outs);
      continue;
    }
    const sparrow_direct_conv_lists l = {lists ? outs : NULL, nout, in_list ? ins : NULL, nin};
    const size_t ws_bytes = sparrow_direct_conv_lists_workspace_bytes(d, lists, in_list);
    void* ws = aligned_alloc(64, (ws_bytes + 63) / 64 * 64 + 64);
    for (size_t k = 0; k <= nk; k++) {
      const int automatic = k == nk;
      if (!automatic && !kernel_runnable(pixel, k)) continue;
      if (!automatic && scalar_only && strstr(kernel_name(pixel, k), "__scalar") == NULL) continue;
      memset(y, 0xFF, ny * sizeof(float));
      memset(ws, 0xFF, ws_bytes); /* stale workspace must not leak into inactive planes */
      if (sparrow_direct_conv_lists_check(d, &l, ws, ws_bytes) != SPARROW_OK) {
        fail("lists refused: %s", sparrow_last_error());
        continue;
      }
      sparrow_direct_conv_plan p;
      /* Tasks split for 2 threads, or (every third case) one task over every panel. */
      sparrow_direct_conv_prepare(&p, d, &l, x, bias, lo, hi, y, ws, i % 3 == 0 ? 1 : 2, automatic ? (size_t)-1 : k);
      for (size_t t = 0; t < p.pad_tasks; t++) sparrow_direct_conv_pad_task(&p, t);
      for (size_t t = 0; t < p.row_tasks; t++) sparrow_direct_conv_rows_task(&p, t);
      sparrow_direct_conv_finish(&p);
      size_t bad = ny;
      for (size_t j = 0; j < ny && bad == ny; j++)
        if (y[j] != ref[j]) bad = j;
      if (bad < ny)
        fail("%s%s: y[%zu] = %g, expected %g", automatic ? "(automatic choice)" : kernel_name(pixel, k),
             lists ? " with lists" : "", bad, (double)y[bad], (double)ref[bad]);
      else
        g_passed++;
    }
    /* Without lists: a fused residual (then ReLU in odd cases), on every kernel, over one task
     * or the 2-thread split, against the unclamped reference plus the residual. */
    if (!lists) {
      float* raw = malloc(ny * sizeof(float));
      float* res = malloc(ny * sizeof(float));
      float* want = malloc(ny * sizeof(float));
      const int relu = (i / 4) & 1;
      reference(&s, cout, x, w, bias, -INFINITY, INFINITY, on, raw);
      for (size_t j = 0; j < ny; j++) {
        res[j] = (float)((int)dc_rnd(0, 64) - 32) / 8.0f;
        const float v = raw[j] + res[j];
        want[j] = relu && 0.0f >= v ? 0.0f : v;
      }
      for (size_t k = 0; k <= nk; k++) {
        const int automatic = k == nk;
        if (!automatic && !kernel_runnable(pixel, k)) continue;
        if (!automatic && scalar_only && strstr(kernel_name(pixel, k), "__scalar") == NULL) continue;
        memset(y, 0xFF, ny * sizeof(float));
        sparrow_direct_conv_plan p;
        sparrow_direct_conv_prepare(&p, d, NULL, x, bias, -INFINITY, INFINITY, y, ws, i % 3 == 0 ? 1 : 2,
                                    automatic ? (size_t)-1 : k);
        if (sparrow_direct_conv_set_residual(&p, res, relu) != SPARROW_OK) {
          fail("residual refused: %s", sparrow_last_error());
          continue;
        }
        for (size_t t = 0; t < p.pad_tasks; t++) sparrow_direct_conv_pad_task(&p, t);
        for (size_t t = 0; t < p.row_tasks; t++) sparrow_direct_conv_rows_task(&p, t);
        size_t bad = ny;
        for (size_t j = 0; j < ny && bad == ny; j++)
          if (y[j] != want[j]) bad = j;
        if (bad < ny)
          fail("%s with a residual%s: y[%zu] = %g, expected %g",
               automatic ? "(automatic choice)" : kernel_name(pixel, k), relu ? " and ReLU" : "", bad, (double)y[bad],
               (double)want[bad]);
        else
          g_passed++;
      }
      free(raw), free(res), free(want);
    }
    /* Pixel mode without lists: the same image twice as a batch of 2 (one multiply) gives the
     * reference twice. */
    if (pixel && !lists) {
      const size_t nx = s.channels * s.h * s.w, bws = sparrow_direct_conv_batch_workspace_bytes(d, 2);
      float* x2 = malloc(2 * nx * sizeof(float));
      float* y2 = malloc(2 * ny * sizeof(float));
      void* ws2 = aligned_alloc(64, (bws + 63) / 64 * 64);
      memcpy(x2, x, nx * sizeof(float));
      memcpy(x2 + nx, x, nx * sizeof(float));
      memset(y2, 0xFF, 2 * ny * sizeof(float));
      if (sparrow_direct_conv_run_batch(d, 2, x2, bias, lo, hi, y2, ws2, bws, 2) != SPARROW_OK) {
        fail("batch refused: %s", sparrow_last_error());
      } else {
        size_t bad = 2 * ny;
        for (size_t j = 0; j < 2 * ny && bad == 2 * ny; j++)
          if (y2[j] != ref[j % ny]) bad = j;
        if (bad < 2 * ny)
          fail("batch of 2: y[%zu] = %g, expected %g", bad, (double)y2[bad], (double)ref[bad % ny]);
        else
          g_passed++;
      }
      free(x2), free(y2), free(ws2);
    }
    sparrow_direct_conv_free(d);
    free(x), free(w), free(b), free(ref), free(y), free(on), free(ins), free(outs), free(ws);
  }
  g_case[0] = 0;
  printf("  %-34s %6zu checks passed (%s)\n", pixel ? "pixel-major direct convolution" : "dense direct convolution",
         g_passed - passed_before,
         pixel ? sparrow_pconv_ukernel_name(sparrow_pconv_ukernel_auto())
               : sparrow_dconv_ukernel_name(sparrow_dconv_ukernel_auto()));
}

/* The pixel-major kernel as a linear layer (sparrow_plinear_*: row-major tokens and output, the
 * kernels' row store): rows past one 6-row block, outputs past one 16-wide panel, K past the
 * slice length, every third case with half the columns zero in a whole panel (compacted), bias
 * and clamp, every runnable kernel and the automatic choice, tasks split for 2 threads or (every third
 * case) one task over every panel, so that two-panel kernels pair panels. */
static void run_linear(uint64_t seed, long cases, int scalar_only) {
  dc_state = seed ^ 0x51ED;
  const size_t passed_before = g_passed;
  for (long i = 0; i < cases; i++) {
    snprintf(g_case, sizeof g_case, "plinear case %ld", i);
    const size_t rows = dc_rnd(1, 20), K = i % 5 == 4 ? dc_rnd(513, 1200) : dc_rnd(1, 80), out = dc_rnd(1, 90);
    float* a = malloc(rows * K * sizeof(float));
    float* w = malloc(out * K * sizeof(float));
    float* b = malloc(out * sizeof(float));
    float* ref = malloc(rows * out * sizeof(float));
    float* y = malloc(rows * out * sizeof(float));
    for (size_t j = 0; j < rows * K; j++) a[j] = (float)((int)dc_rnd(0, 8) - 4) / 4.0f;
    for (size_t j = 0; j < out * K; j++) w[j] = (float)((int)dc_rnd(0, 8) - 4) / 4.0f;
    if (i % 3 == 2)
      for (size_t q = 0; q * 16 < out; q++)
        for (size_t j = 0; j < K; j++)
          if (dc_rnd(0, 1) == 0)
            for (size_t m = q * 16; m < q * 16 + 16 && m < out; m++) w[m * K + j] = 0.0f;
    for (size_t j = 0; j < out; j++) b[j] = (float)((int)dc_rnd(0, 8) - 4) / 4.0f;
    const float lo = (i % 3 == 1) ? 0.0f : -INFINITY, hi = (i % 4 == 2) ? 1.5f : INFINITY;
    const float* bias = (i & 1) ? b : NULL;
    for (size_t r = 0; r < rows; r++)
      for (size_t o = 0; o < out; o++) {
        double acc = bias ? bias[o] : 0.0;
        for (size_t j = 0; j < K; j++) acc += (double)a[r * K + j] * w[o * K + j];
        const float v = (float)acc;
        ref[r * out + o] = v < lo ? lo : (v > hi ? hi : v);
      }
    sparrow_plinear* l = NULL;
    if (sparrow_plinear_create(out, K, w, &l) != SPARROW_OK) {
      fail("valid linear refused: %s", sparrow_last_error());
      free(a), free(w), free(b), free(ref), free(y);
      continue;
    }
    const size_t nk = sparrow_pconv_ukernel_count();
    for (size_t k = 0; k <= nk; k++) {
      const int automatic = k == nk;
      if (!automatic && !sparrow_pconv_ukernel_runnable(k)) continue;
      if (!automatic && scalar_only && strstr(sparrow_pconv_ukernel_name(k), "__scalar") == NULL) continue;
      memset(y, 0xFF, rows * out * sizeof(float));
      sparrow_plinear_plan p;
      if (sparrow_plinear_prepare(&p, l, a, rows, K, bias, lo, hi, y, out, i % 3 == 0 ? 1 : 2,
                                  automatic ? (size_t)-1 : k) != SPARROW_OK) {
        fail("linear plan refused: %s", sparrow_last_error());
        continue;
      }
      for (size_t t = 0; t < p.tasks; t++) sparrow_plinear_task(&p, t);
      size_t bad = rows * out;
      for (size_t j = 0; j < rows * out && bad == rows * out; j++)
        if (y[j] != ref[j]) bad = j;
      if (bad < rows * out)
        fail("%s: y[%zu] = %g, expected %g", automatic ? "(automatic choice)" : sparrow_pconv_ukernel_name(k), bad,
             (double)y[bad], (double)ref[bad]);
      else
        g_passed++;
    }
    /* Unbiased, unclamped cases: the same product by sparrow_panel_gemm (W as the transposed B). */
    if (bias == NULL && isinf(lo) && isinf(hi)) {
      const size_t bytes = sparrow_panel_gemm_workspace_bytes(out, K);
      void* ws = aligned_alloc(64, (bytes + 63) / 64 * 64);
      memset(y, 0xFF, rows * out * sizeof(float));
      size_t bad = rows * out;
      if (sparrow_panel_gemm(rows, out, K, a, K, w, K, 1, y, out, ws, bytes) != SPARROW_OK)
        fail("panel gemm refused: %s", sparrow_last_error());
      else {
        for (size_t j = 0; j < rows * out && bad == rows * out; j++)
          if (y[j] != ref[j]) bad = j;
        if (bad < rows * out)
          fail("panel gemm: y[%zu] = %g, expected %g", bad, (double)y[bad], (double)ref[bad]);
        else
          g_passed++;
      }
      free(ws);
    }
    sparrow_plinear_free(l);
    free(a), free(w), free(b), free(ref), free(y);
  }
  g_case[0] = 0;
  printf("  %-34s %6zu checks passed (%s)\n", "pixel-major linear layer", g_passed - passed_before,
         sparrow_pconv_ukernel_name(sparrow_pconv_ukernel_auto()));
}

void test_dconv(uint64_t seed, long cases, int scalar_only) {
  run_mode(seed, cases, scalar_only, 0);
  run_mode(seed, cases, scalar_only, 1);
  run_linear(seed, cases, scalar_only);
}
