/* Depthwise convolution driver: validates shapes, pads each input plane once into phase-split
 * rows (Kernels/conv/dwconv/dwconv.h), and runs the row microkernel for every output row. */
#include <stdatomic.h>
#include <string.h>

#include "../pack/error.h"
#include "dwconv/dwconv.h"

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

/* Padded extents: rows and columns of the window's reach, columns per stride phase. */
typedef struct {
  size_t rows, cols, phase_len, taps;
} extents;

static int mul_ok(size_t a, size_t b, size_t* out) { return !__builtin_mul_overflow(a, b, out); }

static int get_extents(const sparrow_dwconv_shape* s, extents* e) {
  size_t a, b;
  if (!mul_ok(s->ho - 1, s->stride_h, &a) || !mul_ok(s->kh - 1, s->dilation_h, &b)) return 0;
  e->rows = a + b + 1;
  if (!mul_ok(s->wo - 1, s->stride_w, &a) || !mul_ok(s->kw - 1, s->dilation_w, &b)) return 0;
  e->cols = a + b + 1;
  e->phase_len = (e->cols + s->stride_w - 1) / s->stride_w;
  e->taps = s->kh * s->kw;
  return 1;
}

static size_t plane_floats(const sparrow_dwconv_shape* s, const extents* e) {
  return e->rows * s->stride_w * e->phase_len;
}

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
  if (!get_extents(s, &e) || !mul_ok(e.rows, s->stride_w, &bytes) || !mul_ok(bytes, e.phase_len, &bytes) ||
      !mul_ok(bytes, sizeof(float), &bytes) || bytes > MAX_WORKSPACE)
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "depthwise window reach (%zu x %zu outputs) too large", s->ho,
                        s->wo);
  return SPARROW_OK;
}

size_t sparrow_dwconv_workspace_bytes(const sparrow_dwconv_shape* s) {
  extents e;
  if (!get_extents(s, &e)) return 0;
  return ALIGN64(plane_floats(s, &e) * sizeof(float)) + ALIGN64(e.taps * sizeof(size_t));
}

/* Copies input plane `x` into rows of stride_w phases: phase p of padded row r holds the
 * padded columns p, p + stride_w, ...; out-of-plane positions are 0. */
static void pad_plane(const sparrow_dwconv_shape* s, const extents* e, const float* x, float* buf) {
  const size_t sw = s->stride_w, len = e->phase_len;
  for (size_t r = 0; r < e->rows; r++) {
    float* dst = buf + r * sw * len;
    if (r < s->pad_top || r - s->pad_top >= s->h) {
      memset(dst, 0, sw * len * sizeof(float));
      continue;
    }
    const float* src = x + (r - s->pad_top) * s->w;
    if (sw == 1) {
      const size_t left = s->pad_left < len ? s->pad_left : len;
      const size_t end = s->pad_left + s->w < len ? s->pad_left + s->w : len;
      memset(dst, 0, left * sizeof(float));
      if (end > left) memcpy(dst + left, src, (end - left) * sizeof(float));
      memset(dst + (end > left ? end : left), 0, (len - (end > left ? end : left)) * sizeof(float));
      continue;
    }
    for (size_t p = 0; p < sw; p++)
      for (size_t j = 0; j < len; j++) {
        const size_t col = j * sw + p;
        dst[p * len + j] = col >= s->pad_left && col - s->pad_left < s->w ? src[col - s->pad_left] : 0.0f;
      }
  }
}

void sparrow_dwconv_channels(const sparrow_dwconv_shape* s, const float* x, const float* w, const float* bias,
                             float lo, float hi, float* y, size_t c0, size_t c1, void* workspace, size_t ukernel) {
  extents e;
  if (!get_extents(s, &e)) return;
  const sparrow_dwconv_ukernel_fn fn = select_entry(ukernel)->fn;
  float* buf = workspace;
  size_t* offsets = (size_t*)((char*)workspace + ALIGN64(plane_floats(s, &e) * sizeof(float)));
  const size_t sw = s->stride_w, len = e.phase_len;
  for (size_t ky = 0; ky < s->kh; ky++)
    for (size_t kx = 0; kx < s->kw; kx++) {
      const size_t col = kx * s->dilation_w;
      offsets[ky * s->kw + kx] = (ky * s->dilation_h * sw + col % sw) * len + col / sw;
    }
  const size_t row_step = s->stride_h * sw * len;
  const size_t out_plane = s->ho * s->wo;
  for (size_t c = c0; c < c1; c++) {
    pad_plane(s, &e, x + c * s->h * s->w, buf);
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
