/* The int8 GEMM kernels (every entry of qgemm/ukernels.inc and qspmm/ukernels.inc this CPU runs)
 * against a plain integer loop with the epilogue written out here (acc - x_zero * rowsum + bias,
 * float scale, round half to even, zero point, clamp; or dequantized float): bit-exact equality,
 * on random shapes with edges (k = 1, k % 4 != 0, m < MR, m % MR != 0, n = 1, n around the
 * 8/16/64-column blocks and past the AVX2 kernels' column blocks, 1 or 2 columns past a multiple
 * of 16: the VNNI kernel's remainder path), first a fixed sweep of n = 1 .. 17, 31, 33 (every
 * remainder of the NEON sparse kernels' 16-column tiles) at 0, 50, 90 and 100% zeros with odd m
 * and k % 4 != 0, extreme values (x = 255 with w = -128 / 127, where vpmaddubsw would saturate
 * and sdot's sign flip is at its ends), uint8, int8 and float outputs, transposed outputs, and
 * nothing written outside the output. */
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

void qref_store(const sparrow_qgemm_epilogue* e, size_t row, int64_t c, void* out) {
  float v = (float)(int32_t)c * e->scale[row];
  if (e->out == SPARROW_QOUT_F32) {
    if (e->fbias != NULL) v += e->fbias[row];
    v = fminf(fmaxf(v, e->lo), e->hi);
    memcpy(out, &v, 4);
    return;
  }
  double r = nearbyint((double)v) + e->y_zero; /* v is exact in double: same rounding */
  if (r < e->q_lo) r = e->q_lo;
  if (r > e->q_hi) r = e->q_hi;
  if (e->out == SPARROW_QOUT_U8)
    *(uint8_t*)out = (uint8_t)r;
  else
    *(int8_t*)out = (int8_t)r;
}

/* The reference output (m, n) as bytes of the output type. */
static void reference(const int8_t* w, const uint8_t* x, size_t m, size_t k, size_t n, const sparrow_qgemm_epilogue* e,
                      size_t row, size_t col, void* out) {
  int64_t acc = 0, rowsum = 0;
  for (size_t kk = 0; kk < k; kk++) {
    acc += (int64_t)w[row * k + kk] * (int64_t)x[kk * n + col];
    rowsum += w[row * k + kk];
  }
  (void)m;
  qref_store(e, row, acc - (int64_t)e->x_zero * rowsum + (e->bias != NULL ? e->bias[row] : 0), out);
}

/* y equals ref: counted as passed; else a failure naming the first byte that differs (g_case). */
static int same_bytes(const uint8_t* y, const uint8_t* ref, size_t bytes) {
  if (memcmp(y, ref, bytes) == 0) {
    g_passed++;
    return 1;
  }
  size_t at = 0;
  while (y[at] == ref[at]) at++;
  fail("byte %zu differs: %u, reference %u", at, y[at], ref[at]);
  return 0;
}

/* One case: W m x k (sparsity 0..3: 0, 50, 90, 100% zeros; extreme: x = 255, w = -128 / 127),
 * X k x n, the rest of the epilogue drawn from s; every runnable dense and sparse kernel checked. */
static void one_case(uint64_t* s, long ci, size_t m, size_t k, size_t n, unsigned sparsity, int extreme,
                     int scalar_only, size_t* passed, size_t* passed_sparse) {
  const size_t nk = sparrow_qgemm_count();
  const int out = (int)(next(s) % 3), transposed = next(s) % 5 == 0;
  int8_t* w = malloc(m * k);
  uint8_t* x = malloc(k * n);
  for (size_t i = 0; i < m * k; i++) {
    w[i] = extreme ? (next(s) % 2 ? 127 : -128) : (int8_t)(next(s) % 256);
    const unsigned p = (unsigned)(next(s) % 100);
    if ((sparsity == 1 && p < 50) || (sparsity == 2 && p < 90) || sparsity == 3) w[i] = 0;
  }
  for (size_t i = 0; i < k * n; i++) x[i] = extreme ? 255 : (uint8_t)(next(s) % 256);
  int32_t* rs = malloc(m * 4);
  int32_t* bias = malloc(m * 4);
  float* scale = malloc(m * 4);
  float* fbias = malloc(m * 4);
  for (size_t i = 0; i < m; i++) {
    bias[i] = (int32_t)(next(s) % 20001) - 10000;
    scale[i] = (float)(1 + next(s) % 1000) * (out == SPARROW_QOUT_F32 ? 1e-4f : 1e-5f);
    fbias[i] = (float)((int)(next(s) % 200) - 100) * 0.01f;
  }
  const size_t es = out == SPARROW_QOUT_F32 ? 4 : 1;
  const size_t ybytes = m * n * es + 64;
  uint8_t* y = malloc(ybytes);
  uint8_t* ref = malloc(ybytes);
  uint8_t* xp = malloc(sparrow_qgemm_packed_x_bytes(k, n));
  sparrow_qgemm_pack_x(x, k, n, (ptrdiff_t)n, 1, 0, xp);
  sparrow_qgemm_epilogue e = {0};
  e.row_sums = rs;
  e.x_zero = (int32_t)(next(s) % 256);
  e.bias = next(s) % 2 ? bias : NULL;
  e.scale = scale;
  e.fbias = next(s) % 2 ? fbias : NULL;
  e.out = out;
  e.y_zero = out == SPARROW_QOUT_U8 ? (int32_t)(next(s) % 256) : (int32_t)(next(s) % 256) - 128;
  e.q_lo = out == SPARROW_QOUT_U8 ? 0 : -128;
  e.q_hi = out == SPARROW_QOUT_U8 ? 255 : 127;
  if (next(s) % 3 == 0) e.q_lo = e.y_zero; /* a fused Relu */
  e.lo = next(s) % 2 ? 0.0f : -INFINITY;
  e.hi = INFINITY;
  e.y_row_stride = transposed ? 1 : (ptrdiff_t)n;
  e.y_col_stride = transposed ? (ptrdiff_t)m : 1;
  memset(ref, 0xAB, ybytes);
  for (size_t r = 0; r < m; r++)
    for (size_t c = 0; c < n; c++)
      reference(w, x, m, k, n, &e, r, c, ref + (r * (size_t)e.y_row_stride + c * (size_t)e.y_col_stride) * es);
  for (size_t ki = 0; ki < nk; ki++) {
    if (!sparrow_qgemm_runnable(ki) || (scalar_only && ki != 0)) continue;
    const uint32_t mr = sparrow_qgemm_mr(ki);
    int8_t* wp = malloc(sparrow_qgemm_kernel_packed_bytes(ki, m, k) + 8);
    sparrow_qgemm_kernel_pack_w(ki, w, m, k, (ptrdiff_t)k, 1, wp, rs);
    memset(y, 0xAB, ybytes);
    e.y = y;
    const size_t panels = (m + mr - 1) / mr;
    /* Two calls over a split of the panels, as a threaded driver makes. */
    sparrow_qgemm_run(ki, wp, m, k, 0, panels / 2, xp, n, &e);
    sparrow_qgemm_run(ki, wp, m, k, panels / 2, panels, xp, n, &e);
    snprintf(g_case, sizeof g_case, "qgemm case %ld %s m %zu k %zu n %zu out %d%s%s x_zero %d", ci,
             sparrow_qgemm_name(ki), m, k, n, out, transposed ? " transposed" : "", extreme ? " extreme" : "",
             e.x_zero);
    if (same_bytes(y, ref, ybytes)) passed[ki]++;
    free(wp);
  }
  /* The sparse kernels (1x4 blocks) on the same data. */
  const size_t blocks = sparrow_qspmm_blocks(w, m, k, (ptrdiff_t)k, 1);
  uint32_t* row_ptr = malloc((m + 1) * 4);
  uint32_t* group = malloc(blocks * 4 + 4);
  int8_t* word = malloc(blocks * 4 + 4);
  sparrow_qspmm_pack_w(w, m, k, (ptrdiff_t)k, 1, row_ptr, group, word, rs);
  for (size_t ki = 0; ki < sparrow_qspmm_count(); ki++) {
    if (!sparrow_qspmm_runnable(ki) || (scalar_only && ki != 0)) continue;
    memset(y, 0xAB, ybytes);
    e.y = y;
    sparrow_qspmm_run(ki, row_ptr, group, word, 0, m / 2, xp, n, &e);
    sparrow_qspmm_run(ki, row_ptr, group, word, m / 2, m, xp, n, &e);
    snprintf(g_case, sizeof g_case, "qspmm case %ld %s m %zu k %zu n %zu out %d sparsity %u%s%s x_zero %d", ci,
             sparrow_qspmm_name(ki), m, k, n, out, sparsity, transposed ? " transposed" : "", extreme ? " extreme" : "",
             e.x_zero);
    if (same_bytes(y, ref, ybytes)) passed_sparse[ki]++;
  }
  free(row_ptr), free(group), free(word);
  free(w), free(x), free(rs), free(bias), free(scale), free(fbias), free(y), free(ref), free(xp);
}

void test_qgemm(uint64_t seed, long cases, int scalar_only) {
  uint64_t s = seed ^ 0x16E77ull;
  const size_t nk = sparrow_qgemm_count();
  size_t passed[16] = {0}, passed_sparse[16] = {0};
  /* Fixed: every column remainder of the 16-column tiles (n = 1 .. 18, 31, 33, 34: the NEON
   * sparse kernels' 1-4 groups of 4 columns, the 8-column blocks, the AVX-512 kernels' last 1 or
   * 2 columns past whole blocks), odd rows, k % 4 != 0, each sparsity, with and without extreme
   * values. */
  const size_t fixed_ns[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 31, 33, 34};
  long ci = 0;
  for (size_t i = 0; i < sizeof fixed_ns / sizeof fixed_ns[0]; i++)
    for (unsigned sparsity = 0; sparsity < 4; sparsity++, ci++)
      one_case(&s, ci, ci % 2 ? 5 : 3, ci % 3 ? 75 : 7, fixed_ns[i], sparsity, (int)((i + sparsity) % 2), scalar_only,
               passed, passed_sparse);
  /* K past the AVX-512 kernels' remainder buffers (2048 groups): their masked-block path, with 1
   * and 2 columns past whole blocks. */
  for (unsigned sparsity = 1; sparsity < 3; sparsity++, ci++)
    one_case(&s, ci, 3, 8203, sparsity == 1 ? 17 : 34, sparsity, 0, scalar_only, passed, passed_sparse);
  for (long c = 0; c < cases; c++, ci++) {
    /* k 1030 and m 70: several K chunks and row slabs of the sparse AVX-512 kernel (its KC, SLAB);
     * n is capped there to keep the reference loop short under qemu. */
    const size_t ms[] = {1, 3, 4, 5, 8, 13, 17, 70};
    const size_t ks[] = {1, 3, 4, 7, 9, 64, 75, 1030};
    const size_t ns[] = {1, 7, 8, 9, 16, 17, 31, 33, 34, 50, 63, 64, 65, 100, 129, 1301};
    const size_t m = ms[next(&s) % 8], k = ks[next(&s) % 8];
    size_t n = next(&s) % 4 == 0 ? 1 + next(&s) % 17 : ns[next(&s) % 16];
    if (m * k * n > 4000000) n = 65;
    const int extreme = next(&s) % 4 == 0;
    const unsigned sparsity = (unsigned)(next(&s) % 4); /* 0, 50, 90, 100% zeros */
    one_case(&s, ci, m, k, n, sparsity, extreme, scalar_only, passed, passed_sparse);
  }
  g_case[0] = 0;
  for (size_t ki = 0; ki < nk; ki++) {
    if (sparrow_qgemm_runnable(ki) && !(scalar_only && ki != 0))
      printf("  %-34s %6zu checks passed\n", sparrow_qgemm_name(ki), passed[ki]);
    else
      printf("  %-34s not runnable here\n", sparrow_qgemm_name(ki));
  }
  for (size_t ki = 0; ki < sparrow_qspmm_count(); ki++) {
    if (sparrow_qspmm_runnable(ki) && !(scalar_only && ki != 0))
      printf("  %-34s %6zu checks passed\n", sparrow_qspmm_name(ki), passed_sparse[ki]);
    else
      printf("  %-34s not runnable here\n", sparrow_qspmm_name(ki));
  }
  printf("  %-34s %s, %s\n", "(int8 automatic choice)", sparrow_qgemm_name(sparrow_qgemm_auto()),
         sparrow_qspmm_name(sparrow_qspmm_auto()));
}
