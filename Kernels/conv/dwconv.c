/* Depthwise convolution driver: validates shapes, pads each input plane once into phase-split
 * rows (Kernels/conv/dwconv/dwconv.h), and runs the row microkernel for every output row. */
#include <stdatomic.h>
#include <string.h>

#include "../pack/error.h"
#include "dwconv/dwconv.h"
#include "window.h"

#define ALIGN64(x) (((x) + 63) & ~(size_t)63)
/* One thread's workspace is at most this: a padded plane of 64M floats is already absurd. */
#define MAX_WORKSPACE ((size_t)1 << 30)

typedef struct {
  const char* name;
  sparrow_isa isa;
  sparrow_dwconv_ukernel_fn fn;
} entry;

/* "sparrow_dwconv_f32_1x1__scalar" is shown without its "sparrow_" prefix. */
#define SPARROW_DWCONV_UKERNEL(fn, ISA) {&#fn[8], SPARROW_ISA_##ISA, fn},
static const entry table[] = {
#include "dwconv/ukernels.inc"
};
#undef SPARROW_DWCONV_UKERNEL
static const size_t table_len = sizeof table / sizeof table[0];

size_t sparrow_dwconv_ukernel_count(void) { return table_len; }
const char* sparrow_dwconv_ukernel_name(size_t i) { return i < table_len ? table[i].name : NULL; }
int sparrow_dwconv_ukernel_runnable(size_t i) {
  return i < table_len && (table[i].isa == SPARROW_ISA_SCALAR || table[i].isa == sparrow_detected_isa());
}

static const entry* select_entry(size_t forced) {
  if (forced < table_len) return &table[forced];
  const sparrow_isa isa = sparrow_active_isa();
  for (size_t i = 0; i < table_len; i++)
    if (table[i].isa == isa) return &table[i];
  return &table[0];  /* the scalar kernel comes first */
}

const char* sparrow_dwconv_kernel_name(void) { return select_entry(SPARROW_DWCONV_AUTO)->name; }

sparrow_dwconv_ukernel_fn sparrow_dwconv_select(size_t ukernel) { return select_entry(ukernel)->fn; }

sparrow_status sparrow_dwconv_check(const sparrow_dwconv_shape* s) {
  sparrow_clear_error();
  if (s == NULL) return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "NULL shape");
  const size_t dims[] = {s->channels, s->multiplier, s->h, s->w, s->kh, s->kw, s->stride_h,
                         s->stride_w, s->dilation_h, s->dilation_w, s->ho, s->wo};
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
  if (!sparrow_window_extents(s, &e) || !sparrow_mul_ok(e.rows, s->stride_w, &bytes) || !sparrow_mul_ok(bytes, e.phase_len, &bytes) ||
      !sparrow_mul_ok(bytes, sizeof(float), &bytes) || bytes > MAX_WORKSPACE)
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "depthwise window reach (%zu x %zu outputs) too large", s->ho,
                        s->wo);
  return SPARROW_OK;
}

size_t sparrow_dwconv_workspace_bytes(const sparrow_dwconv_shape* s) {
  extents e;
  if (!sparrow_window_extents(s, &e)) return 0;
  return ALIGN64(sparrow_window_plane_floats(s, &e) * sizeof(float)) + ALIGN64(e.taps * sizeof(size_t));
}

void sparrow_dwconv_channels(const sparrow_dwconv_shape* s, const float* x, const float* w, const float* bias,
                             float lo, float hi, float* y, size_t c0, size_t c1, void* workspace, size_t ukernel) {
  extents e;
  if (!sparrow_window_extents(s, &e)) return;
  const sparrow_dwconv_ukernel_fn fn = select_entry(ukernel)->fn;
  float* buf = workspace;
  size_t* offsets = (size_t*)((char*)workspace + ALIGN64(sparrow_window_plane_floats(s, &e) * sizeof(float)));
  const size_t sw = s->stride_w, len = e.phase_len;
  for (size_t ky = 0; ky < s->kh; ky++)
    for (size_t kx = 0; kx < s->kw; kx++) offsets[ky * s->kw + kx] = sparrow_window_tap_offset(s, &e, ky, kx);
  const size_t row_step = s->stride_h * sw * len;
  const size_t out_plane = s->ho * s->wo;
  for (size_t c = c0; c < c1; c++) {
    sparrow_window_pad_plane(s, &e, x + c * s->h * s->w, buf);
    for (size_t j = 0; j < s->multiplier; j++) {
      const size_t oc = c * s->multiplier + j;
      const float* wk = w + oc * e.taps;
      const float b = bias != NULL ? bias[oc] : 0.0f;
      float* out = y + oc * out_plane;
      for (size_t oy = 0; oy < s->ho; oy++) fn(s->wo, e.taps, buf + oy * row_step, offsets, wk, b, lo, hi, out + oy * s->wo);
    }
  }
}

sparrow_status sparrow_dwconv(const sparrow_dwconv_shape* s, const float* x, const float* w, const float* bias,
                              float lo, float hi, float* y, void* workspace, size_t workspace_bytes, int threads) {
  sparrow_status st = sparrow_dwconv_check(s);
  if (st != SPARROW_OK) return st;
  if (x == NULL || w == NULL || y == NULL) return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "NULL x, w or y");
  if (!(lo <= hi)) return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "clamp range [%g, %g] is empty", lo, hi);
  size_t nt = threads < 1 ? 1 : (size_t)threads;
  if (nt > s->channels) nt = s->channels;
#ifndef _OPENMP
  nt = 1;
#endif
  const size_t per = sparrow_dwconv_workspace_bytes(s);
  if (workspace == NULL || ((uintptr_t)workspace & 63) != 0 || workspace_bytes / nt < per)
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "workspace: need %zu bytes, 64-byte aligned (got %zu)",
                        per * nt, workspace_bytes);
#ifdef _OPENMP
  if (nt > 1) {
    /* Contiguous channel ranges, one per thread, each with its own slice of workspace. */
    atomic_size_t next = 0;
#pragma omp parallel num_threads((int)nt)
    for (size_t t; (t = atomic_fetch_add_explicit(&next, 1, memory_order_relaxed)) < nt;) {
      const size_t c0 = s->channels * t / nt, c1 = s->channels * (t + 1) / nt;
      sparrow_dwconv_channels(s, x, w, bias, lo, hi, y, c0, c1, (char*)workspace + t * per, SPARROW_DWCONV_AUTO);
    }
    return SPARROW_OK;
  }
#endif
  sparrow_dwconv_channels(s, x, w, bias, lo, hi, y, 0, s->channels, workspace, SPARROW_DWCONV_AUTO);
  return SPARROW_OK;
}
