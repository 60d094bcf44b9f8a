/* The quantized element-wise kernels (every entry of qelem/ukernels.inc this CPU runs) against
 * plain loops written here (int8 and uint8 data, zero points over the whole range, NaN and
 * infinite inputs, ties at .5, a Relu clamp): bit-exact equality, and nothing written past n.
 * Also the activation packers (sparrow_qgemm_pack_x / pack_conv, whose inner step is the
 * dispatcher's SIMD interleave) against the layout written out here. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "neon_test.h"
#include "sparrow_kernels.h"
#include "sparrow_qgemm.h"

static uint64_t next(uint64_t* s) {
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return *s >> 33;
}
static float unit(uint64_t* s) { return (float)(next(s) % 1000001) / 1000000.0f; }

/* ONNX QuantizeLinear of v (already divided by the scale) to a type of range [lo, hi]. */
static int32_t quantize(float v, int32_t zero, int32_t lo, int32_t hi) {
  if (isnan(v)) return zero;
  double r = nearbyint((double)v) + zero; /* ties to even in double as in float */
  return (int32_t)(r < lo ? lo : r > hi ? hi : r);
}

static void test_elementwise(uint64_t* s, long c, int scalar_only) {
  const size_t n = next(s) % 150;
  const int sa = (int)(next(s) & 1), sb = (int)(next(s) & 1), sy = (int)(next(s) & 1);
  const int32_t za = sa ? (int32_t)(next(s) % 256) - 128 : (int32_t)(next(s) % 256);
  const int32_t zb = sb ? (int32_t)(next(s) % 256) - 128 : (int32_t)(next(s) % 256);
  const int32_t zy = sy ? (int32_t)(next(s) % 256) - 128 : (int32_t)(next(s) % 256);
  const float ascale = 1e-4f + unit(s) * 0.1f, bscale = 1e-4f + unit(s) * 0.1f, yscale = 1e-4f + unit(s) * 0.1f;
  const int relu = (int)(next(s) % 3 == 0);
  sparrow_qelem_params p = {ascale,
                            bscale,
                            yscale,
                            za + (sa ? 128 : 0),
                            zb + (sb ? 128 : 0),
                            zy + (sy ? 128 : 0),
                            (uint8_t)(sa ? 0x80 : 0),
                            (uint8_t)(sb ? 0x80 : 0),
                            (uint8_t)(sy ? 0x80 : 0),
                            relu ? 0.0f : -INFINITY,
                            INFINITY};
  const int32_t ylo = sy ? -128 : 0, yhi = sy ? 127 : 255;
  float x[160], fref[160], fgot[161];
  uint8_t a[160], b[160], qref[160], aref[160], got[161];
  for (size_t i = 0; i < n; i++) {
    a[i] = (uint8_t)next(s);
    b[i] = (uint8_t)next(s);
    switch (next(s) % 12) {
      case 0:
        x[i] = NAN;
        break;
      case 1:
        x[i] = (next(s) & 1) ? INFINITY : -INFINITY;
        break;
      case 2:
        x[i] = ((float)((int)(next(s) % 600) - 300) + 0.5f) * yscale;
        break; /* near a tie */
      default:
        x[i] = (unit(s) - 0.5f) * 600.0f * yscale;
    }
    qref[i] = (uint8_t)quantize(x[i] / yscale, zy, ylo, yhi);
    const float va = (float)((sa ? (int32_t)(int8_t)a[i] : (int32_t)a[i]) - za) * ascale;
    const float vb = (float)((sb ? (int32_t)(int8_t)b[i] : (int32_t)b[i]) - zb) * bscale;
    fref[i] = va;
    float sum = va + vb;
    if (relu && sum < 0) sum = 0;
    aref[i] = (uint8_t)quantize(sum / yscale, zy, ylo, yhi);
  }
  for (size_t ki = 0; ki < sparrow_qelem_count(); ki++) {
    if (!sparrow_qelem_runnable(ki) || (scalar_only && ki > 2)) continue;
    const int op = sparrow_qelem_op(ki);
    snprintf(g_case, sizeof g_case, "qelem %s case %ld n %zu signed %d%d%d relu %d", sparrow_qelem_name(ki), c, n, sa,
             sb, sy, relu);
    if (op == SPARROW_QELEM_DEQUANTIZE) {
      fgot[n] = 12345.0f;
      sparrow_qelem_run(op, ki, n, a, NULL, &p, fgot);
      if (memcmp(fgot, fref, n * 4) != 0 || fgot[n] != 12345.0f) {
        fail("%s: dequantize differs", g_case);
        continue;
      }
    } else {
      got[n] = 0xAB;
      sparrow_qelem_run(op, ki, n, op == SPARROW_QELEM_ADD ? (const void*)a : (const void*)x, b, &p, got);
      const uint8_t* ref = op == SPARROW_QELEM_ADD ? aref : qref;
      size_t at = 0;
      while (at < n && got[at] == ref[at]) at++;
      if (at < n || got[n] != 0xAB) {
        fail("%s: element %zu is %u, reference %u", g_case, at, at < n ? got[at] : got[n], at < n ? ref[at] : 0xAB);
        continue;
      }
    }
    g_passed++;
  }
}

/* X packed (qgemm.h): out[(q * ldx + col) * 4 + j] = X[4 q + j][col] ^ flip, 0 past K and in the
 * pad columns [n, ldx) of each group row (ldx = n rounded up to 16). */
static void test_packers(uint64_t* s, long c) {
  const size_t ch = 1 + next(s) % 9, h = 1 + next(s) % 30, w = 1 + next(s) % 40;
  const size_t kh = 1 + next(s) % 3, kw = 1 + next(s) % 3, sh = 1 + next(s) % 2, sw = 1 + next(s) % 3;
  const size_t dh = 1 + next(s) % 2, dw = 1 + next(s) % 2;
  const ptrdiff_t pt = (ptrdiff_t)(next(s) % 3), pl = (ptrdiff_t)(next(s) % 3);
  const ptrdiff_t eh = (ptrdiff_t)h + 2 * pt - (ptrdiff_t)(dh * (kh - 1) + 1);
  const ptrdiff_t ew = (ptrdiff_t)w + 2 * pl - (ptrdiff_t)(dw * (kw - 1) + 1);
  if (eh < 0 || ew < 0) return;
  const size_t ho = (size_t)eh / sh + 1, wo = (size_t)ew / sw + 1, k = ch * kh * kw, n = ho * wo;
  const size_t bytes = sparrow_qgemm_packed_x_bytes(k, n);
  uint8_t* x = malloc(ch * h * w);
  uint8_t *got = malloc(bytes), *ref = calloc(bytes, 1);
  if (bytes != (k + 3) / 4 * 4 * ((n + 15) / 16 * 16)) fail("packed_x_bytes(%zu, %zu) = %zu", k, n, bytes);
  for (size_t i = 0; i < ch * h * w; i++) x[i] = (uint8_t)next(s);
  const uint8_t pad = (uint8_t)next(s), flip = (next(s) & 1) ? 0x80 : 0;
  for (size_t kk = 0; kk < (k + 3) / 4 * 4; kk++)
    for (size_t col = 0; col < n; col++) {
      uint8_t v = 0;
      if (kk < k) {
        const size_t ic = kk / (kh * kw), ky = kk / kw % kh, kx = kk % kw, oy = col / wo, ox = col % wo;
        const ptrdiff_t iy = (ptrdiff_t)(oy * sh + ky * dh) - pt, ix = (ptrdiff_t)(ox * sw + kx * dw) - pl;
        v = (uint8_t)((iy < 0 || iy >= (ptrdiff_t)h || ix < 0 || ix >= (ptrdiff_t)w
                           ? pad
                           : x[(ic * h + (size_t)iy) * w + (size_t)ix]) ^
                      flip);
      }
      ref[(kk / 4 * ((n + 15) / 16 * 16) + col) * 4 + kk % 4] = v;
    }
  memset(got, 0xAB, bytes);
  sparrow_qgemm_pack_conv(x, ch, h, w, kh, kw, sh, sw, dh, dw, pt, pl, ho, wo, pad, flip != 0, got);
  snprintf(g_case, sizeof g_case, "pack_conv case %ld c %zu h %zu w %zu k %zux%zu s %zu,%zu d %zu,%zu", c, ch, h, w, kh,
           kw, sh, sw, dh, dw);
  if (memcmp(got, ref, bytes) != 0)
    fail("%s: packed activations differ", g_case);
  else
    g_passed++;
  /* The tap-major form on the channels rounded down to a multiple of 4: k' = (ky * kw + kx) * c4 + ic. */
  const size_t c4 = ch / 4 * 4;
  if (c4 > 0) {
    const size_t k4 = c4 * kh * kw, b4 = sparrow_qgemm_packed_x_bytes(k4, n), ldx = (n + 15) / 16 * 16;
    uint8_t *g4 = malloc(b4), *r4 = calloc(b4, 1);
    uint8_t* work = malloc(sparrow_qgemm_pack_conv_c4_work_bytes(c4, kh, kw, sh, sw, dh, dw, ho, wo) + 1);
    for (size_t kk = 0; kk < k4; kk++)
      for (size_t col = 0; col < n; col++) {
        const size_t tap = kk / c4, ic = kk % c4, ky = tap / kw, kx = tap % kw, oy = col / wo, ox = col % wo;
        const ptrdiff_t iy = (ptrdiff_t)(oy * sh + ky * dh) - pt, ix = (ptrdiff_t)(ox * sw + kx * dw) - pl;
        r4[(kk / 4 * ldx + col) * 4 + kk % 4] = (uint8_t)((iy < 0 || iy >= (ptrdiff_t)h || ix < 0 || ix >= (ptrdiff_t)w
                                                               ? pad
                                                               : x[(ic * h + (size_t)iy) * w + (size_t)ix]) ^
                                                          flip);
      }
    memset(g4, 0xAB, b4);
    sparrow_qgemm_pack_conv_c4(x, c4, h, w, kh, kw, sh, sw, dh, dw, pt, pl, ho, wo, pad, flip != 0, work, g4);
    if (memcmp(g4, r4, b4) != 0)
      fail("%s: tap-major (c4) packed activations differ", g_case);
    else
      g_passed++;
    /* A band of output rows [oy0, oy1) from the planes pack_conv_c4 left in `work`: the reference's
     * columns oy0 * wo .. oy1 * wo - 1, at the band's own stride, its pad columns zero. */
    const size_t oy0 = next(s) % ho, oy1 = oy0 + 1 + next(s) % (ho - oy0), nb = (oy1 - oy0) * wo;
    const size_t ldb = (nb + 15) / 16 * 16, bb = sparrow_qgemm_packed_x_bytes(k4, nb);
    uint8_t *gb = malloc(bb), *rb = calloc(bb, 1);
    for (size_t q = 0; q < k4 / 4; q++) memcpy(rb + q * ldb * 4, r4 + (q * ldx + oy0 * wo) * 4, nb * 4);
    memset(gb, 0xAB, bb);
    sparrow_qgemm_pack_conv_c4_rows(work, c4, kh, kw, sh, sw, dh, dw, ho, wo, oy0, oy1, gb);
    if (memcmp(gb, rb, bb) != 0)
      fail("%s: tap-major rows %zu..%zu differ", g_case, oy0, oy1);
    else
      g_passed++;
    free(gb), free(rb);
    free(g4), free(r4), free(work);
  }
  /* pack_x on the image as a [c, h * w] matrix (rows contiguous: the interleave path). */
  const size_t xk = ch, xn = h * w, xbytes = sparrow_qgemm_packed_x_bytes(xk, xn);
  uint8_t *xg = malloc(xbytes), *xr = calloc(xbytes, 1);
  for (size_t kk = 0; kk < (xk + 3) / 4 * 4; kk++)
    for (size_t col = 0; col < xn; col++)
      xr[(kk / 4 * ((xn + 15) / 16 * 16) + col) * 4 + kk % 4] = kk < xk ? (uint8_t)(x[kk * xn + col] ^ flip) : 0;
  memset(xg, 0xAB, xbytes);
  sparrow_qgemm_pack_x(x, xk, xn, (ptrdiff_t)xn, 1, flip != 0, xg);
  if (memcmp(xg, xr, xbytes) != 0)
    fail("pack_x case %ld k %zu n %zu: packed activations differ", c, xk, xn);
  else
    g_passed++;
  free(x), free(got), free(ref), free(xg), free(xr);
}

void test_qelem(uint64_t seed, long cases, int scalar_only) {
  uint64_t s = seed ^ 0x51E1E3ull;
  for (long c = 0; c < cases; c++) {
    g_case_index = c;
    test_elementwise(&s, c, scalar_only);
    test_packers(&s, c);
  }
  g_case_index = -1;
}
