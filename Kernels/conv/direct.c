/* Direct sparse convolution (k x k, groups = 1): no im2col. The input's planes are copied once
 * into padded, stride-phase-split planes (window.h); each nonzero weight (m, c, ky, kx) becomes
 * an offset into them, so output row oy of channel m is a sum of nnz(m) shifted contiguous
 * rows, which is exactly what the depthwise row microkernels compute (dwconv/dwconv.h):
 *   y[m][oy][ox] = clamp(bias[m] + sum_t value[t] * padded[offset[t] + oy * row_step + ox])
 * It wins over im2col + SpMM when the weight is sparse enough that building the K x N im2col
 * matrix costs more than the multiply saves; the planner measures both. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../pack/error.h"
#include "dwconv/dwconv.h"
#include "window.h"

#define MAX_WORKSPACE ((size_t)1 << 32)

struct sparrow_direct_conv {
  sparrow_dwconv_shape s; /* channels = input channels, multiplier 1 */
  size_t cout;
  extents e;
  size_t plane;     /* floats per padded plane, a multiple of 16 (64-byte aligned planes) */
  size_t* row_ptr;  /* cout + 1 */
  size_t* offsets;  /* per nonzero: c * plane + tap offset */
  float* values;
};

sparrow_status sparrow_direct_conv_create(const sparrow_dwconv_shape* shape, size_t cout, const float* w,
                                          sparrow_direct_conv** out) {
  if (out == NULL) return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "NULL output");
  *out = NULL;
  sparrow_status st = sparrow_dwconv_check(shape);
  if (st != SPARROW_OK) return st;
  if (w == NULL || cout == 0 || cout > SPARROW_MAX_DIM)
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "direct convolution: NULL weight or %zu output channels", cout);
  sparrow_dwconv_shape s = *shape;
  s.multiplier = 1;
  extents e;
  size_t plane, total, k;
  if (!sparrow_window_extents(&s, &e) || !sparrow_mul_ok(s.channels, e.taps, &k) ||
      !sparrow_mul_ok(k, cout, &total))
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "direct convolution too large");
  plane = (sparrow_window_plane_floats(&s, &e) + 15) / 16 * 16;
  size_t ws;
  if (!sparrow_mul_ok(plane, s.channels, &ws) || !sparrow_mul_ok(ws, sizeof(float), &ws) || ws > MAX_WORKSPACE)
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "direct convolution: padded input of %zu channels too large",
                        s.channels);
  size_t nnz = 0;
  for (size_t i = 0; i < total; i++) nnz += w[i] != 0.0f;
  sparrow_direct_conv* d = calloc(1, sizeof *d);
  if (d == NULL) return sparrow_fail(SPARROW_ERR_OUT_OF_MEMORY, "direct convolution");
  d->row_ptr = malloc((cout + 1) * sizeof(size_t));
  d->offsets = malloc((nnz ? nnz : 1) * sizeof(size_t));
  d->values = malloc((nnz ? nnz : 1) * sizeof(float));
  if (d->row_ptr == NULL || d->offsets == NULL || d->values == NULL) {
    sparrow_direct_conv_free(d);
    return sparrow_fail(SPARROW_ERR_OUT_OF_MEMORY, "direct convolution: %zu nonzeros", nnz);
  }
  d->s = s;
  d->cout = cout;
  d->e = e;
  d->plane = plane;
  size_t t = 0;
  for (size_t m = 0; m < cout; m++) {
    d->row_ptr[m] = t;
    const float* row = w + m * k;
    for (size_t c = 0; c < s.channels; c++)
      for (size_t ky = 0; ky < s.kh; ky++)
        for (size_t kx = 0; kx < s.kw; kx++) {
          const float v = row[(c * s.kh + ky) * s.kw + kx];
          if (v == 0.0f) continue;
          d->offsets[t] = c * plane + sparrow_window_tap_offset(&s, &e, ky, kx);
          d->values[t++] = v;
        }
  }
  d->row_ptr[cout] = t;
  *out = d;
  return SPARROW_OK;
}

void sparrow_direct_conv_free(sparrow_direct_conv* d) {
  if (d == NULL) return;
  free(d->row_ptr);
  free(d->offsets);
  free(d->values);
  free(d);
}

size_t sparrow_direct_conv_workspace_bytes(const sparrow_direct_conv* d) { return d->plane * d->s.channels * sizeof(float); }
size_t sparrow_direct_conv_nnz(const sparrow_direct_conv* d) { return d->row_ptr[d->cout]; }

void sparrow_direct_conv_pad(const sparrow_direct_conv* d, const float* x, void* workspace, size_t c0, size_t c1) {
  float* buf = workspace;
  for (size_t c = c0; c < c1; c++)
    sparrow_window_pad_plane(&d->s, &d->e, x + c * d->s.h * d->s.w, buf + c * d->plane);
}

void sparrow_direct_conv_rows(const sparrow_direct_conv* d, const void* workspace, const float* bias, float lo,
                              float hi, float* y, size_t m0, size_t m1, size_t ukernel) {
  const sparrow_dwconv_ukernel_fn fn = sparrow_dwconv_select(ukernel);
  const float* buf = workspace;
  const size_t row_step = d->s.stride_h * d->s.stride_w * d->e.phase_len;
  const size_t ho = d->s.ho, wo = d->s.wo;
  for (size_t m = m0; m < m1; m++) {
    const size_t t0 = d->row_ptr[m], nt = d->row_ptr[m + 1] - t0;
    const float b = bias != NULL ? bias[m] : 0.0f;
    for (size_t oy = 0; oy < ho; oy++)
      fn(wo, nt, buf + oy * row_step, d->offsets + t0, d->values + t0, b, lo, hi, y + (m * ho + oy) * wo);
  }
}

sparrow_status sparrow_direct_conv_run(const sparrow_direct_conv* d, const float* x, const float* bias, float lo, float hi,
                                   float* y, void* workspace, size_t workspace_bytes, int threads) {
  sparrow_clear_error();
  if (d == NULL || x == NULL || y == NULL) return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "NULL conv, x or y");
  if (!(lo <= hi)) return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "clamp range [%g, %g] is empty", lo, hi);
  if (workspace == NULL || ((uintptr_t)workspace & 63) != 0 || workspace_bytes < sparrow_direct_conv_workspace_bytes(d))
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "workspace: need %zu bytes, 64-byte aligned (got %zu)",
                        sparrow_direct_conv_workspace_bytes(d), workspace_bytes);
  size_t nt = threads < 1 ? 1 : (size_t)threads;
#ifdef _OPENMP
  if (nt > 1) {
    /* Chunks from a shared counter (not `omp for`: see Kernels/parallel/spmm.c). */
    const size_t cin = d->s.channels, cout = d->cout;
    atomic_size_t next = 0;
#pragma omp parallel num_threads((int)nt)
    for (size_t t; (t = atomic_fetch_add_explicit(&next, 1, memory_order_relaxed)) < nt;)
      sparrow_direct_conv_pad(d, x, workspace, cin * t / nt, cin * (t + 1) / nt);
    const size_t chunks = nt * 4 < cout ? nt * 4 : cout;
    atomic_size_t next_rows = 0;
#pragma omp parallel num_threads((int)nt)
    for (size_t t; (t = atomic_fetch_add_explicit(&next_rows, 1, memory_order_relaxed)) < chunks;)
      sparrow_direct_conv_rows(d, workspace, bias, lo, hi, y, cout * t / chunks, cout * (t + 1) / chunks,
                               SPARROW_DWCONV_AUTO);
    return SPARROW_OK;
  }
#endif
  (void)nt;
  sparrow_direct_conv_pad(d, x, workspace, 0, d->s.channels);
  sparrow_direct_conv_rows(d, workspace, bias, lo, hi, y, 0, d->cout, SPARROW_DWCONV_AUTO);
  return SPARROW_OK;
}
