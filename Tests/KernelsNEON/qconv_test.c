/* The direct int8 convolution kernels (every entry of qconv/ukernels.inc this CPU runs) against a
 * plain integer convolution written here: int64 sums over the original NCHW input, the padding
 * being the zero point (so it adds nothing), then the epilogue as qgemm.h's scalar store defines
 * it (+ bias, float scale, round half to even, zero point, clamp; or dequantized float). Bit-exact
 * equality on random convolutions: c = 4 .. 20, kernels 1x1, 3x3, 5x3, 1x7, 7x7, strides 1-2 and
 * dilations 1-2 per axis, asymmetric pads, 1 .. ~20 output rows and columns, m around the panel
 * heights (1, 5, 16, 17, 63, 64, 65, 130), uint8 / int8 (a fused Relu or Clip) / float outputs,
 * uint8 and int8 (sign-flipped) inputs, bias or none, extreme values (x = 255 with w = -128 /
 * 127). Each entry runs twice per case: over all panels and positions split in four calls (as
 * threads split them), and over one sub-range of panels and positions with everything outside it
 * checked untouched. The planes and the packed weights end at a PROT_NONE page, so a kernel
 * that reads past either faults. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "neon_test.h"
#include "sparrow_qgemm.h"

static uint64_t next(uint64_t* s) {
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return *s >> 33;
}

/* `bytes` ending exactly at a PROT_NONE page (start 4-aligned when bytes is). */
typedef struct {
  void* map;
  size_t map_bytes;
} guarded;

static void* guarded_alloc(guarded* g, size_t bytes) {
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  const size_t body = (bytes + page - 1) / page * page;
  g->map_bytes = body + page;
  g->map = mmap(NULL, g->map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (g->map == MAP_FAILED) {
    perror("mmap");
    exit(2);
  }
  mprotect((uint8_t*)g->map + body, page, PROT_NONE);
  return (uint8_t*)g->map + body - bytes;
}

static void guarded_free(guarded* g) { munmap(g->map, g->map_bytes); }

typedef struct {
  size_t c, h, w, kh, kw, sh, sw, dh, dw, ho, wo, m;
  ptrdiff_t pt, pl;
  int flip, extreme;
} conv;

/* The reference output (oc, position n) as bytes of the output type. x is NCHW (one image), w is
 * ONNX's [m][c][kh][kw]; zp is the zero point in x's own type. */
static void reference(const conv* cv, const uint8_t* x, const int8_t* w, int32_t zp, const sparrow_qgemm_epilogue* e,
                      size_t oc, size_t n, void* out) {
  const size_t oy = n / cv->wo, ox = n % cv->wo;
  int64_t acc = 0;
  for (size_t ic = 0; ic < cv->c; ic++)
    for (size_t ky = 0; ky < cv->kh; ky++) {
      const ptrdiff_t iy = (ptrdiff_t)(oy * cv->sh + ky * cv->dh) - cv->pt;
      for (size_t kx = 0; kx < cv->kw; kx++) {
        const ptrdiff_t ix = (ptrdiff_t)(ox * cv->sw + kx * cv->dw) - cv->pl;
        int32_t v = zp; /* the padding */
        if (iy >= 0 && iy < (ptrdiff_t)cv->h && ix >= 0 && ix < (ptrdiff_t)cv->w) {
          const uint8_t b = x[(ic * cv->h + (size_t)iy) * cv->w + (size_t)ix];
          v = cv->flip ? (int32_t)(int8_t)b : (int32_t)b;
        }
        acc += (int64_t)w[((oc * cv->c + ic) * cv->kh + ky) * cv->kw + kx] * (v - zp);
      }
    }
  if (e->bias != NULL) acc += e->bias[oc];
  qref_store(e, oc, acc, out);
}

/* y equals ref: counted as passed; else a failure naming the first byte that differs (g_case). */
static int same_bytes(const uint8_t* y, const uint8_t* ref, size_t bytes, size_t es, ptrdiff_t rs, ptrdiff_t cs) {
  if (memcmp(y, ref, bytes) == 0) {
    g_passed++;
    return 1;
  }
  size_t at = 0;
  while (y[at] == ref[at]) at++;
  const size_t el = at / es;
  /* Element el = row * rs + col * cs (one of the strides is 1). */
  const size_t row = cs == 1 ? el / (size_t)rs : el % (size_t)cs, col = cs == 1 ? el % (size_t)rs : el / (size_t)cs;
  fail("byte %zu (channel %zu, position %zu) differs: %u, reference %u", at, row, col, y[at], ref[at]);
  return 0;
}

/* One convolution with the rest drawn from s; every runnable entry checked (two runs each). */
static void one_case(uint64_t* s, long ci, const conv* cv, int scalar_only, size_t* passed) {
  const size_t taps = cv->kh * cv->kw, k = taps * cv->c, n = cv->ho * cv->wo, m = cv->m;
  const int out = (int)(next(s) % 3), transposed = next(s) % 6 == 0;
  uint8_t* x = malloc(cv->c * cv->h * cv->w);
  int8_t* w = malloc(m * k);  /* ONNX order */
  int8_t* wt = malloc(m * k); /* tap-major: k = (ky * kw + kx) * c + ic */
  for (size_t i = 0; i < cv->c * cv->h * cv->w; i++) x[i] = cv->extreme ? (cv->flip ? 0x7F : 0xFF) : (uint8_t)next(s);
  for (size_t i = 0; i < m * k; i++) w[i] = cv->extreme ? (next(s) % 2 ? 127 : -128) : (int8_t)next(s);
  for (size_t oc = 0; oc < m; oc++)
    for (size_t ic = 0; ic < cv->c; ic++)
      for (size_t t = 0; t < taps; t++) wt[oc * k + t * cv->c + ic] = w[(oc * cv->c + ic) * taps + t];
  /* The zero point in x's type; the packed (uint8) domain's is zp + 128 for int8 input. */
  const int32_t zp = cv->flip ? (int32_t)(next(s) % 256) - 128 : (int32_t)(next(s) % 256);
  int32_t* rs = malloc(m * 4);
  int32_t* bias = malloc(m * 4);
  float* scale = malloc(m * 4);
  float* fbias = malloc(m * 4);
  /* Scales that leave most outputs inside the output range (|sum| ~ sqrt(k) * 128 * 74). */
  const float unit = 1.0f / (sqrtf((float)k) * 128.0f * 74.0f);
  for (size_t i = 0; i < m; i++) {
    bias[i] = (int32_t)(next(s) % 200001) - 100000;
    scale[i] = (float)(1 + next(s) % 1000) * (out == SPARROW_QOUT_F32 ? 0.01f : 0.3f) * unit;
    fbias[i] = (float)((int)(next(s) % 200) - 100) * 0.01f;
  }
  sparrow_qgemm_epilogue e = {0};
  e.row_sums = rs;
  e.x_zero = cv->flip ? zp + 128 : zp;
  e.bias = next(s) % 2 ? bias : NULL;
  e.scale = scale;
  e.fbias = next(s) % 2 ? fbias : NULL;
  e.out = out;
  e.y_zero = out == SPARROW_QOUT_U8 ? (int32_t)(next(s) % 256) : (int32_t)(next(s) % 256) - 128;
  e.q_lo = out == SPARROW_QOUT_U8 ? 0 : -128;
  e.q_hi = out == SPARROW_QOUT_U8 ? 255 : 127;
  const unsigned act = (unsigned)(next(s) % 4);
  if (act == 1) e.q_lo = e.y_zero; /* a fused Relu */
  if (act == 2) {                  /* a fused Clip */
    e.q_lo = e.y_zero > e.q_lo + 20 ? e.y_zero - 20 : e.q_lo;
    e.q_hi = e.y_zero < e.q_hi - 50 ? e.y_zero + 50 : e.q_hi;
  }
  e.lo = next(s) % 2 ? 0.0f : -INFINITY;
  e.hi = next(s) % 3 == 0 ? 6.0f : INFINITY;
  /* Rows of n outputs, sometimes further apart (an output with more positions than this band). */
  const size_t row_len = transposed ? m : n + (next(s) % 3 == 0 ? 1 + next(s) % 9 : 0);
  e.y_row_stride = transposed ? 1 : (ptrdiff_t)row_len;
  e.y_col_stride = transposed ? (ptrdiff_t)m : 1;
  const size_t es = out == SPARROW_QOUT_F32 ? 4 : 1;
  const size_t elems = transposed ? m * n : m * row_len, ybytes = elems * es + 64;
  uint8_t* y = malloc(ybytes);
  uint8_t* ref = malloc(ybytes);
  uint8_t* want = malloc(ybytes);
  memset(ref, 0xAB, ybytes);
  for (size_t oc = 0; oc < m; oc++)
    for (size_t p = 0; p < n; p++)
      reference(cv, x, w, zp, &e, oc, p, ref + (oc * (size_t)e.y_row_stride + p * (size_t)e.y_col_stride) * es);

  /* The planes, once per case: the packer is shared by every entry. */
  const size_t wb =
      sparrow_qgemm_pack_conv_c4_work_bytes(cv->c, cv->kh, cv->kw, cv->sh, cv->sw, cv->dh, cv->dw, cv->ho, cv->wo);
  guarded gw;
  uint8_t* work = guarded_alloc(&gw, wb);
  sparrow_qgemm_pack_conv_c4_planes(x, cv->c, cv->h, cv->w, cv->kh, cv->kw, cv->sh, cv->sw, cv->dh, cv->dw, cv->pt,
                                    cv->pl, cv->ho, cv->wo, (uint8_t)zp, cv->flip, work);
  for (size_t ki = 0; ki < sparrow_qconv_count(); ki++) {
    if (!sparrow_qconv_runnable(ki) || (scalar_only && ki != 0)) continue;
    const uint32_t mr = sparrow_qconv_mr(ki);
    const size_t panels = (m + mr - 1) / mr;
    guarded gp;
    int8_t* wp = guarded_alloc(&gp, sparrow_qgemm_packed_bytes(m, k, mr));
    sparrow_qgemm_pack_w(wt, m, k, (ptrdiff_t)k, 1, mr, wp, rs);
    e.y = y;
#define RUN(p0, p1, n0, n1)                                                                                         \
  sparrow_qconv_run(ki, wp, m, cv->c, cv->kh, cv->kw, cv->sh, cv->sw, cv->dh, cv->dw, cv->ho, cv->wo, work, p0, p1, \
                    n0, n1, &e)
    snprintf(
        g_case, sizeof g_case,
        "qconv case %ld %s c %zu h %zu w %zu k %zux%zu s %zu,%zu d %zu,%zu pads %td,%td -> %zux%zu m %zu out %d%s%s%s "
        "x_zero %d",
        ci, sparrow_qconv_name(ki), cv->c, cv->h, cv->w, cv->kh, cv->kw, cv->sh, cv->sw, cv->dh, cv->dw, cv->pt, cv->pl,
        cv->ho, cv->wo, m, out, transposed ? " transposed" : "", cv->flip ? " int8" : "", cv->extreme ? " extreme" : "",
        e.x_zero);
    /* All of it, in four calls: panels and positions each split at a random point. */
    const size_t pa = (size_t)(next(s) % (panels + 1)), na = (size_t)(next(s) % (n + 1));
    memset(y, 0xAB, ybytes);
    RUN(0, pa, 0, na);
    RUN(pa, panels, 0, na);
    RUN(0, pa, na, n);
    RUN(pa, panels, na, n);
    const int ok = same_bytes(y, ref, ybytes, es, e.y_row_stride, e.y_col_stride);
    /* One sub-range: nothing outside panels [p0, p1) x positions [n0, n1) written. */
    size_t p0 = (size_t)(next(s) % panels), p1 = p0 + 1 + (size_t)(next(s) % (panels - p0));
    size_t n0 = (size_t)(next(s) % n), n1 = n0 + 1 + (size_t)(next(s) % (n - n0));
    memset(want, 0xAB, ybytes);
    for (size_t oc = p0 * mr; oc < p1 * mr && oc < m; oc++)
      for (size_t p = n0; p < n1; p++) {
        const size_t at = (oc * (size_t)e.y_row_stride + p * (size_t)e.y_col_stride) * es;
        memcpy(want + at, ref + at, es);
      }
    memset(y, 0xAB, ybytes);
    RUN(p0, p1, n0, n1);
#undef RUN
    const size_t len = strlen(g_case);
    snprintf(g_case + len, sizeof g_case - len, " (panels %zu..%zu of %zu, positions %zu..%zu)", p0, p1, panels, n0,
             n1);
    if (same_bytes(y, want, ybytes, es, e.y_row_stride, e.y_col_stride) && ok) passed[ki] += 2;
    guarded_free(&gp);
  }
  guarded_free(&gw);
  free(x), free(w), free(wt), free(rs), free(bias), free(scale), free(fbias), free(y), free(ref), free(want);
}

/* Input size and pads for ho x wo outputs: pads up to the dilated kernel, the input at least one
 * pixel, and up to stride - 1 more pixels that the last output does not reach. */
static void fit(uint64_t* s, size_t k, size_t st, size_t d, size_t out, ptrdiff_t* pad, size_t* in) {
  const ptrdiff_t span = (ptrdiff_t)((out - 1) * st + (k - 1) * d + 1);
  for (;;) {
    const ptrdiff_t p0 = (ptrdiff_t)(next(s) % ((k - 1) * d + 1)), p1 = (ptrdiff_t)(next(s) % ((k - 1) * d + 1));
    const ptrdiff_t size = span - p0 - p1 + (ptrdiff_t)(next(s) % st);
    if (size >= 1) {
      *pad = p0, *in = (size_t)size;
      return;
    }
  }
}

static const size_t KS[5][2] = {{1, 1}, {3, 3}, {5, 3}, {1, 7}, {7, 7}};
static const size_t MS[8] = {1, 5, 16, 17, 63, 64, 65, 130};

/* A convolution with kernel ks, strides sh, sw, m channels out, the rest drawn from s; outputs
 * capped so the reference stays short under qemu. */
static conv draw(uint64_t* s, size_t ks, size_t sh, size_t sw, size_t m, int extreme) {
  conv cv = {0};
  cv.c = 4 * (1 + (size_t)(next(s) % 5));
  cv.kh = KS[ks][0], cv.kw = KS[ks][1];
  cv.sh = sh, cv.sw = sw;
  cv.dh = 1 + (size_t)(next(s) % 2), cv.dw = 1 + (size_t)(next(s) % 2);
  cv.m = m;
  cv.ho = 1 + (size_t)(next(s) % 20), cv.wo = 1 + (size_t)(next(s) % 20);
  while (cv.m * cv.ho * cv.wo * cv.c * cv.kh * cv.kw > 1500000 && cv.ho * cv.wo > 1) {
    if (cv.ho >= cv.wo)
      cv.ho = (cv.ho + 1) / 2;
    else
      cv.wo = (cv.wo + 1) / 2;
  }
  fit(s, cv.kh, cv.sh, cv.dh, cv.ho, &cv.pt, &cv.h);
  fit(s, cv.kw, cv.sw, cv.dw, cv.wo, &cv.pl, &cv.w);
  cv.flip = next(s) % 4 == 0;
  cv.extreme = extreme;
  return cv;
}

void test_qconv(uint64_t seed, long cases, int scalar_only) {
  uint64_t s = seed ^ 0xC0417ull;
  size_t passed[16] = {0};
  long ci = 0;
  /* Fixed: every kernel shape with every stride pair, m through its edges; extreme values at
   * every m. */
  for (size_t ks = 0; ks < 5; ks++)
    for (size_t st = 0; st < 4; st++, ci++) {
      const conv cv = draw(&s, ks, 1 + st / 2, 1 + st % 2, MS[(size_t)ci % 8], 0);
      one_case(&s, ci, &cv, scalar_only, passed);
    }
  for (size_t i = 0; i < 8; i++, ci++) {
    const conv cv = draw(&s, i % 5, 1 + i % 2, 1 + i / 4, MS[i], 1);
    one_case(&s, ci, &cv, scalar_only, passed);
  }
  for (long c = 0; c < cases; c++, ci++) {
    const size_t ks = (size_t)(next(&s) % 5), sh = 1 + (size_t)(next(&s) % 2), sw = 1 + (size_t)(next(&s) % 2);
    const size_t m = MS[next(&s) % 8];
    const conv cv = draw(&s, ks, sh, sw, m, next(&s) % 8 == 0);
    one_case(&s, ci, &cv, scalar_only, passed);
  }
  g_case[0] = 0;
  for (size_t ki = 0; ki < sparrow_qconv_count(); ki++) {
    if (sparrow_qconv_runnable(ki) && !(scalar_only && ki != 0))
      printf("  %-34s %6zu checks passed\n", sparrow_qconv_name(ki), passed[ki]);
    else
      printf("  %-34s not runnable here\n", sparrow_qconv_name(ki));
  }
  printf("  %-34s %s\n", "(qconv automatic choice)", sparrow_qconv_name(sparrow_qconv_auto()));
}
