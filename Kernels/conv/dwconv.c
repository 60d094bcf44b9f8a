/* Depthwise convolution driver: validates shapes, pads each input plane into phase-split rows
 * (Kernels/conv/dwconv/dwconv.h) a band of rows at a time, and runs the row microkernel on each
 * band while it is in L1. */
#include <string.h>

#include "../common/error.h"
#include "../dispatch/dispatch.h"
#include "window.h"

#define ALIGN64 SPARROW_ALIGN64
/* One thread's workspace is at most this: a padded plane of 64M floats is already absurd. */
#define MAX_WORKSPACE ((size_t)1 << 30)

sparrow_status sparrow_dwconv_check(const sparrow_dwconv_shape* s) {
  sparrow_clear_error();
  if (s == NULL) return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "NULL shape");
  const size_t dims[] = {s->channels, s->multiplier, s->h,          s->w,          s->kh, s->kw,
                         s->stride_h, s->stride_w,   s->dilation_h, s->dilation_w, s->ho, s->wo};
  for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
    if (dims[i] == 0 || dims[i] > SPARROW_MAX_DIM)
      return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "depthwise shape has a size of %zu (need 1...%zu)", dims[i],
                          SPARROW_MAX_DIM);
  if (s->pad_top > SPARROW_MAX_DIM || s->pad_left > SPARROW_MAX_DIM)
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "depthwise padding out of range");
  if (s->kh > SPARROW_MAX_DIM / s->kw)
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "kernel %zux%zu too large", s->kh, s->kw);
  extents e;
  size_t bytes;
  if (!sparrow_window_extents(s, &e) || !sparrow_mul_ok(e.rows, s->stride_w, &bytes) ||
      !sparrow_mul_ok(bytes, e.phase_len, &bytes) || !sparrow_mul_ok(bytes, sizeof(float), &bytes) ||
      bytes > MAX_WORKSPACE)
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "depthwise window reach (%zu x %zu outputs) too large", s->ho,
                        s->wo);
  return SPARROW_OK;
}

/* Output rows per band: the padded input rows one band reads stay within BAND_BYTES (L1), so
 * each band is padded and then multiplied while it is hot, instead of a whole plane (MobileNetV2's
 * 112 x 112 planes are 50 KB) padded through L2 first. At least one row. */
#define BAND_BYTES ((size_t)16 << 10)
static size_t band_rows(const sparrow_dwconv_shape* s, const extents* e) {
  const size_t row_bytes = s->stride_w * e->phase_len * sizeof(float), reach = (s->kh - 1) * s->dilation_h + 1;
  const size_t fit = BAND_BYTES / row_bytes;
  size_t r = fit > reach ? (fit - reach) / s->stride_h + 1 : 1;
  return r < s->ho ? r : s->ho;
}
/* Padded input rows a band of `rows` output rows reads. */
static size_t band_in_rows(const sparrow_dwconv_shape* s, size_t rows) {
  return (rows - 1) * s->stride_h + (s->kh - 1) * s->dilation_h + 1;
}

size_t sparrow_dwconv_workspace_bytes(const sparrow_dwconv_shape* s) {
  extents e;
  if (!sparrow_window_extents(s, &e)) return 0;
  const size_t band = band_in_rows(s, band_rows(s, &e)) * s->stride_w * e.phase_len;
  return ALIGN64((band + SPARROW_DWCONV_SLACK) * sizeof(float)) + ALIGN64(e.taps * sizeof(size_t));
}

void sparrow_dwconv_channels(const sparrow_dwconv_shape* s, const float* x, const float* w, const float* bias, float lo,
                             float hi, float* y, size_t c0, size_t c1, void* workspace, size_t ukernel) {
  extents e;
  if (!sparrow_window_extents(s, &e)) return;
  const sparrow_dwconv_ukernel_fn fn = sparrow_dwconv_select(ukernel);
  const size_t rows = band_rows(s, &e);
  float* buf = workspace;
  size_t* offsets =
      (size_t*)((char*)workspace +
                ALIGN64((band_in_rows(s, rows) * s->stride_w * e.phase_len + SPARROW_DWCONV_SLACK) * sizeof(float)));
  const size_t sw = s->stride_w, len = e.phase_len;
  for (size_t ky = 0; ky < s->kh; ky++)
    for (size_t kx = 0; kx < s->kw; kx++) offsets[ky * s->kw + kx] = sparrow_window_tap_offset(s, &e, ky, kx);
  const size_t row_step = s->stride_h * sw * len;
  const size_t out_plane = s->ho * s->wo;
  for (size_t c = c0; c < c1; c++)
    for (size_t oy = 0; oy < s->ho; oy += rows) {
      const size_t n = s->ho - oy < rows ? s->ho - oy : rows;
      sparrow_window_pad_rows(s, &e, x + c * s->h * s->w, oy * s->stride_h, oy * s->stride_h + band_in_rows(s, n), buf);
      for (size_t j = 0; j < s->multiplier; j++) {
        const size_t oc = c * s->multiplier + j;
        fn(s->wo, n, e.taps, buf, row_step, offsets, w + oc * e.taps, bias != NULL ? bias[oc] : 0.0f, lo, hi,
           y + oc * out_plane + oy * s->wo);
      }
    }
}

void sparrow_dwconv_prepare(sparrow_dwconv_plan* p, const sparrow_dwconv_shape* s, const float* x, const float* w,
                            const float* bias, float lo, float hi, float* y, void* workspace, int threads,
                            size_t ukernel) {
  size_t nt = threads < 1 ? 1 : (size_t)threads;
  if (nt > s->channels) nt = s->channels;
  *p = (sparrow_dwconv_plan){.shape = s,
                             .x = x,
                             .w = w,
                             .bias = bias,
                             .lo = lo,
                             .hi = hi,
                             .y = y,
                             .workspace = workspace,
                             .workspace_per_task = sparrow_dwconv_workspace_bytes(s),
                             .tasks = nt,
                             .ukernel = ukernel};
}

void sparrow_dwconv_task(void* plan, size_t t) {
  const sparrow_dwconv_plan* p = plan;
  if (t >= p->tasks) return;
  const size_t c0 = p->shape->channels * t / p->tasks, c1 = p->shape->channels * (t + 1) / p->tasks;
  sparrow_dwconv_channels(p->shape, p->x, p->w, p->bias, p->lo, p->hi, p->y, c0, c1,
                          (char*)p->workspace + t * p->workspace_per_task, p->ukernel);
}

sparrow_status sparrow_dwconv(const sparrow_dwconv_shape* s, const float* x, const float* w, const float* bias,
                              float lo, float hi, float* y, void* workspace, size_t workspace_bytes, int threads) {
  sparrow_status st = sparrow_dwconv_check(s);
  if (st != SPARROW_OK) return st;
  if (x == NULL || w == NULL || y == NULL) return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "NULL x, w or y");
  if (!(lo <= hi)) return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "clamp range [%g, %g] is empty", lo, hi);
  /* Without OpenMP the tasks run serially: one workspace is enough. */
  if (!sparrow_has_openmp()) threads = 1;
  sparrow_dwconv_plan p;
  sparrow_dwconv_prepare(&p, s, x, w, bias, lo, hi, y, workspace, threads, SPARROW_DWCONV_AUTO);
  if (workspace == NULL || ((uintptr_t)workspace & 63) != 0 || workspace_bytes / p.tasks < p.workspace_per_task)
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "workspace: need %zu bytes, 64-byte aligned (got %zu)",
                        p.workspace_per_task * p.tasks, workspace_bytes);
  sparrow_parallel_for(p.tasks, threads, sparrow_dwconv_task, &p);
  return SPARROW_OK;
}
