/* Depthwise convolution: every registered row microkernel (and the automatic choice) against a
 * plain double-precision loop over the definition, on random shapes that reach each kernel's
 * wide, narrow and tail paths. Inputs are dyadic, so sums are exact in float in any order. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "neon_test.h"
#include "sparrow_kernels.h"

static uint64_t dw_state;
static size_t dw_rnd(size_t lo, size_t hi) {
  uint64_t z = (dw_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return lo + (size_t)((z ^ (z >> 31)) % (hi - lo + 1));
}

static void reference(const sparrow_dwconv_shape* s, const float* x, const float* w, const float* bias, float lo,
                      float hi, float* y) {
  for (size_t oc = 0; oc < s->channels * s->multiplier; oc++) {
    const size_t c = oc / s->multiplier;
    for (size_t oy = 0; oy < s->ho; oy++)
      for (size_t ox = 0; ox < s->wo; ox++) {
        double acc = bias ? bias[oc] : 0.0;
        for (size_t ky = 0; ky < s->kh; ky++)
          for (size_t kx = 0; kx < s->kw; kx++) {
            const long iy = (long)(oy * s->stride_h + ky * s->dilation_h) - (long)s->pad_top;
            const long ix = (long)(ox * s->stride_w + kx * s->dilation_w) - (long)s->pad_left;
            if (iy >= 0 && iy < (long)s->h && ix >= 0 && ix < (long)s->w)
              acc += (double)w[(oc * s->kh + ky) * s->kw + kx] * x[(c * s->h + (size_t)iy) * s->w + (size_t)ix];
          }
        float v = (float)acc;
        y[(oc * s->ho + oy) * s->wo + ox] = v < lo ? lo : (v > hi ? hi : v);
      }
  }
}

static size_t out_size(size_t in, size_t p0, size_t p1, size_t k, size_t d, size_t st) {
  const size_t ext = (k - 1) * d + 1;
  return in + p0 + p1 < ext ? 0 : (in + p0 + p1 - ext) / st + 1;
}

void test_dwconv(uint64_t seed, long cases, int scalar_only) {
  dw_state = seed ^ 0xDDC0DEull;
  const size_t nk = sparrow_dwconv_ukernel_count();
  size_t passed_before = g_passed;
  for (long i = 0; i < cases; i++) {
    sparrow_dwconv_shape s = {0};
    s.channels = dw_rnd(1, 4);
    s.multiplier = dw_rnd(1, 2);
    s.kh = dw_rnd(1, 5);
    s.kw = dw_rnd(1, 7);
    s.stride_h = dw_rnd(1, 3);
    s.stride_w = dw_rnd(1, 3);
    s.dilation_h = dw_rnd(1, 2);
    s.dilation_w = dw_rnd(1, 2);
    /* Every eighth case is tall enough that the driver pads it in several bands of rows. */
    s.h = i % 8 == 7 ? dw_rnd(60, 140) : dw_rnd(1, 10);
    s.w = dw_rnd(1, 80);
    s.pad_top = dw_rnd(0, 2);
    s.pad_left = dw_rnd(0, 3);
    s.ho = out_size(s.h, s.pad_top, dw_rnd(0, 2), s.kh, s.dilation_h, s.stride_h);
    s.wo = out_size(s.w, s.pad_left, dw_rnd(0, 3), s.kw, s.dilation_w, s.stride_w);
    if (s.ho == 0 || s.wo == 0) continue;
    snprintf(g_case, sizeof g_case, "dwconv c%zu x%zu %zux%zu k%zux%zu s%zu,%zu d%zu,%zu p%zu,%zu -> %zux%zu", s.channels,
             s.multiplier, s.h, s.w, s.kh, s.kw, s.stride_h, s.stride_w, s.dilation_h, s.dilation_w, s.pad_top,
             s.pad_left, s.ho, s.wo);
    if (sparrow_dwconv_check(&s) != SPARROW_OK) {
      fail("valid shape refused: %s", sparrow_last_error());
      continue;
    }
    const size_t m = s.channels * s.multiplier, ny = m * s.ho * s.wo;
    float* x = malloc(s.channels * s.h * s.w * sizeof(float));
    float* w = malloc(m * s.kh * s.kw * sizeof(float));
    float* b = malloc(m * sizeof(float));
    float* ref = malloc(ny * sizeof(float));
    float* y = malloc(ny * sizeof(float));
    const size_t ws_bytes = sparrow_dwconv_workspace_bytes(&s) * 2;
    void* ws = aligned_alloc(64, (ws_bytes + 63) / 64 * 64);
    for (size_t j = 0; j < s.channels * s.h * s.w; j++) x[j] = (float)((int)dw_rnd(0, 64) - 32) / 16.0f;
    for (size_t j = 0; j < m * s.kh * s.kw; j++) w[j] = (float)((int)dw_rnd(0, 16) - 8) / 8.0f;
    for (size_t j = 0; j < m; j++) b[j] = (float)((int)dw_rnd(0, 8) - 4) / 4.0f;
    const float lo = (i % 3 == 1) ? 0.0f : -INFINITY, hi = (i % 3 == 2) ? 1.5f : INFINITY;
    const float* bias = (i & 1) ? b : NULL;
    reference(&s, x, w, bias, lo, hi, ref);
    for (size_t k = 0; k <= nk; k++) {
      const int automatic = k == nk;
      if (!automatic && !sparrow_dwconv_ukernel_runnable(k)) continue;
      if (!automatic && scalar_only && strstr(sparrow_dwconv_ukernel_name(k), "__scalar") == NULL) continue;
      memset(y, 0xFF, ny * sizeof(float));
      if (automatic) {
        if (sparrow_dwconv(&s, x, w, bias, lo, hi, y, ws, ws_bytes, 2) != SPARROW_OK) {
          fail("sparrow_dwconv refused: %s", sparrow_last_error());
          continue;
        }
      } else {
        sparrow_dwconv_channels(&s, x, w, bias, lo, hi, y, 0, s.channels, ws, k);
      }
      size_t bad = ny;
      for (size_t j = 0; j < ny && bad == ny; j++)
        if (y[j] != ref[j]) bad = j;
      if (bad < ny)
        fail("%s: y[%zu] = %g, expected %g", automatic ? "(automatic choice)" : sparrow_dwconv_ukernel_name(k), bad,
             (double)y[bad], (double)ref[bad]);
      else
        g_passed++;
    }
    free(x), free(w), free(b), free(ref), free(y), free(ws);
  }
  g_case[0] = 0;
  printf("  %-34s %6zu checks passed (%s)\n", "depthwise convolution", g_passed - passed_before,
         sparrow_dwconv_kernel_name());
}

/* Channels in the vector lanes (sparrow_dwcv): every ISA this CPU runs (and the active one) on
 * random shapes with 1-40 channels (whole and partial blocks of 16, 8 and 4 lanes), maps 1-30
 * wide, strides, dilations and pads as above, 1-3 threads; the same exact reference. NaN kept by
 * the clamp is checked on one case per run. */
void test_dwcv(uint64_t seed, long cases, int scalar_only) {
  dw_state = seed ^ 0xC0C0Aull;
  const size_t passed_before = g_passed;
  const int isas[] = {SPARROW_ISA_SCALAR, SPARROW_ISA_AVX2, SPARROW_ISA_AVX512, SPARROW_ISA_NEON, -1};
  for (long i = 0; i < cases; i++) {
    sparrow_dwconv_shape s = {0};
    s.channels = dw_rnd(1, 40);
    s.multiplier = 1;
    s.kh = dw_rnd(1, 5);
    s.kw = dw_rnd(1, 5);
    s.stride_h = dw_rnd(1, 3);
    s.stride_w = dw_rnd(1, 3);
    s.dilation_h = dw_rnd(1, 2);
    s.dilation_w = dw_rnd(1, 2);
    s.h = dw_rnd(1, 20);
    s.w = dw_rnd(1, 30);
    s.pad_top = dw_rnd(0, 2);
    s.pad_left = dw_rnd(0, 3);
    s.ho = out_size(s.h, s.pad_top, dw_rnd(0, 2), s.kh, s.dilation_h, s.stride_h);
    s.wo = out_size(s.w, s.pad_left, dw_rnd(0, 3), s.kw, s.dilation_w, s.stride_w);
    if (s.ho == 0 || s.wo == 0) continue;
    snprintf(g_case, sizeof g_case, "dwcv c%zu %zux%zu k%zux%zu s%zu,%zu d%zu,%zu p%zu,%zu -> %zux%zu", s.channels, s.h,
             s.w, s.kh, s.kw, s.stride_h, s.stride_w, s.dilation_h, s.dilation_w, s.pad_top, s.pad_left, s.ho, s.wo);
    const size_t m = s.channels, ny = m * s.ho * s.wo;
    float* x = malloc(m * s.h * s.w * sizeof(float));
    float* w = malloc(m * s.kh * s.kw * sizeof(float));
    float* b = malloc(m * sizeof(float));
    float* ref = malloc(ny * sizeof(float));
    float* y = malloc(ny * sizeof(float));
    for (size_t j = 0; j < m * s.h * s.w; j++) x[j] = (float)((int)dw_rnd(0, 64) - 32) / 16.0f;
    if (i == 0) x[0] = NAN;
    for (size_t j = 0; j < m * s.kh * s.kw; j++) w[j] = (float)((int)dw_rnd(0, 16) - 8) / 8.0f;
    for (size_t j = 0; j < m; j++) b[j] = (float)((int)dw_rnd(0, 8) - 4) / 4.0f;
    const float lo = (i % 3 == 1) ? 0.0f : -INFINITY, hi = (i % 3 == 2) ? 1.5f : INFINITY;
    const float* bias = (i & 1) ? b : NULL;
    reference(&s, x, w, bias, lo, hi, ref);
    const int threads = 1 + (int)(i % 3);
    for (size_t k = 0; k < sizeof isas / sizeof isas[0]; k++) {
      const int isa = isas[k];
      if (isa >= 0 && !sparrow_isa_supported((sparrow_isa)isa)) continue;
      if (scalar_only && isa != SPARROW_ISA_SCALAR && isa != -1) continue;
      const size_t ws_bytes = sparrow_dwcv_workspace_bytes(&s, isa) * (size_t)threads;
      float* packed = malloc(sparrow_dwcv_packed_floats(&s, isa) * sizeof(float));
      void* ws = aligned_alloc(64, (ws_bytes + 63) / 64 * 64);
      sparrow_dwcv_pack(&s, isa, w, bias, packed);
      memset(y, 0xFF, ny * sizeof(float));
      if (sparrow_dwcv(&s, isa, x, packed, lo, hi, y, ws, ws_bytes, threads) != SPARROW_OK) {
        fail("isa %d: sparrow_dwcv refused: %s", isa, sparrow_last_error());
      } else {
        size_t bad = ny;
        for (size_t j = 0; j < ny && bad == ny; j++)
          if (y[j] != ref[j] && !(isnan(y[j]) && isnan(ref[j]))) bad = j;
        if (bad < ny)
          fail("isa %d (%zu lanes): y[%zu] = %g, expected %g", isa, sparrow_dwcv_lanes(isa), bad, (double)y[bad],
               (double)ref[bad]);
        else
          g_passed++;
      }
      free(packed), free(ws);
    }
    free(x), free(w), free(b), free(ref), free(y);
  }
  g_case[0] = 0;
  printf("  %-34s %6zu checks passed (%zu lanes)\n", "depthwise, channels in lanes", g_passed - passed_before,
         sparrow_dwcv_lanes(-1));
}
