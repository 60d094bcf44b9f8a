/* Depthwise convolution with channels in the vector lanes (dwcv/dwcv.h): per block of L
 * channels, the planes are transposed pixel-major, copied into a zero-padded buffer, convolved
 * for every output pixel at once and transposed back. For small maps (MobileNetV2's 7x7 and
 * 14x14 layers, strided ones), where the row kernels fill few lanes and pay a padded copy and a
 * call per channel; the planner times it against them (DepthwiseConvStep). Multiplier 1. */
#include <stdint.h>
#include <string.h>

#include "../common/error.h"
#include "dwcv/dwcv.h"
#include "window.h"

#define ALIGN64 SPARROW_ALIGN64

static sparrow_dwcv_ukernel_fn dwcv_fn(sparrow_isa isa, size_t* lanes) {
#if defined(__x86_64__)
  if (isa == SPARROW_ISA_AVX512) return *lanes = 16, sparrow_dwcv_f32_16__avx512f;
  if (isa == SPARROW_ISA_AVX2) return *lanes = 8, sparrow_dwcv_f32_8__avx2;
#endif
#if defined(__aarch64__)
  if (isa == SPARROW_ISA_NEON) return *lanes = 4, sparrow_dwcv_f32_4__neon;
#endif
  return *lanes = 1, sparrow_dwcv_f32_1__scalar;
}

/* The ISA's register transposes, or NULL (the generic copies). */
static void dwcv_tr(sparrow_isa isa, sparrow_dwcv_in_fn* in, sparrow_dwcv_out_fn* out) {
  *in = NULL, *out = NULL;
#if defined(__x86_64__)
  if (isa == SPARROW_ISA_AVX512) *in = sparrow_dwcv_in_f32__avx512f, *out = sparrow_dwcv_out_f32__avx512f;
  if (isa == SPARROW_ISA_AVX2) *in = sparrow_dwcv_in_f32__avx2, *out = sparrow_dwcv_out_f32__avx2;
#else
  (void)isa;
#endif
}

/* The ISA a call runs: `isa` when this CPU runs it, else the active one. */
static sparrow_isa dwcv_isa(int isa) {
  return isa >= 0 && sparrow_isa_supported((sparrow_isa)isa) ? (sparrow_isa)isa : sparrow_active_isa();
}

size_t sparrow_dwcv_lanes(int isa) {
  size_t lanes;
  dwcv_fn(dwcv_isa(isa), &lanes);
  return lanes;
}

/* Byte offsets of one task's buffers: padded block, transposed input, output, tap offsets,
 * padded positions of the input pixels. */
typedef struct {
  size_t t, in, out, toff, pos, total;
} dwcv_layout;

static int dwcv_layout_of(const sparrow_dwconv_shape* s, size_t lanes, dwcv_layout* l, extents* e) {
  if (!sparrow_window_extents(s, e)) return 0;
  size_t pad, in, out;
  if (!sparrow_mul_ok(e->rows * e->cols, lanes * sizeof(float), &pad) ||
      !sparrow_mul_ok(s->h * s->w, lanes * sizeof(float), &in) ||
      !sparrow_mul_ok(s->ho * s->wo, lanes * sizeof(float), &out))
    return 0;
  l->t = 0;
  l->in = ALIGN64(pad);
  l->out = l->in + ALIGN64(in);
  l->toff = l->out + ALIGN64(out);
  l->pos = l->toff + ALIGN64(e->taps * sizeof(size_t));
  l->total = l->pos + ALIGN64(s->h * s->w * sizeof(size_t));
  return 1;
}

size_t sparrow_dwcv_workspace_bytes(const sparrow_dwconv_shape* s, int isa) {
  dwcv_layout l;
  extents e;
  return dwcv_layout_of(s, sparrow_dwcv_lanes(isa), &l, &e) ? l.total : 0;
}

size_t sparrow_dwcv_packed_floats(const sparrow_dwconv_shape* s, int isa) {
  const size_t lanes = sparrow_dwcv_lanes(isa), blocks = (s->channels + lanes - 1) / lanes;
  return blocks * (s->kh * s->kw + 1) * lanes;
}

void sparrow_dwcv_pack(const sparrow_dwconv_shape* s, int isa, const float* w, const float* bias, float* packed) {
  const size_t lanes = sparrow_dwcv_lanes(isa), taps = s->kh * s->kw, blocks = (s->channels + lanes - 1) / lanes;
  for (size_t b = 0; b < blocks; b++) {
    float* p = packed + b * (taps + 1) * lanes;
    for (size_t l = 0; l < lanes; l++) {
      const size_t c = b * lanes + l;
      for (size_t t = 0; t < taps; t++) p[t * lanes + l] = c < s->channels ? w[c * taps + t] : 0.0f;
      p[taps * lanes + l] = c < s->channels && bias != NULL ? bias[c] : 0.0f;
    }
  }
}

typedef struct {
  const sparrow_dwconv_shape* s;
  extents e;
  dwcv_layout l;
  sparrow_dwcv_ukernel_fn fn;
  sparrow_dwcv_in_fn in;
  sparrow_dwcv_out_fn out;
  size_t lanes, blocks, tasks;
  const float *x, *packed;
  float lo, hi;
  float* y;
  char* workspace;
} dwcv_plan;

static void dwcv_block(const dwcv_plan* p, size_t b, char* ws) {
  const sparrow_dwconv_shape* s = p->s;
  const size_t L = p->lanes, c0 = b * L, n = s->channels - c0 < L ? s->channels - c0 : L;
  const size_t hw = s->h * s->w, howo = s->ho * s->wo, cols = p->e.cols, taps = p->e.taps;
  float *t = (float*)(ws + p->l.t), *in = (float*)(ws + p->l.in), *out = (float*)(ws + p->l.out);
  if (p->in != NULL) {
    p->in(p->x + c0 * hw, hw, n, (const size_t*)(ws + p->l.pos), t);
  } else {
    /* Pixel-major input; lanes past the last channel zero (their outputs are dropped). */
    if (n < L) memset(in, 0, hw * L * sizeof(float));
    sparrow_transpose_f32(n, hw, p->x + c0 * hw, hw, in, L);
    /* Padded rows: input columns [a, bcol) of the padded row hold the input row. */
    const size_t a = s->pad_left < cols ? s->pad_left : cols;
    const size_t bcol = s->pad_left + s->w < cols ? s->pad_left + s->w : cols;
    for (size_t r = 0; r < p->e.rows; r++) {
      float* row = t + r * cols * L;
      const long iy = (long)r - (long)s->pad_top;
      if (iy < 0 || iy >= (long)s->h || bcol <= a) {
        memset(row, 0, cols * L * sizeof(float));
        continue;
      }
      memset(row, 0, a * L * sizeof(float));
      memcpy(row + a * L, in + (size_t)iy * s->w * L, (bcol - a) * L * sizeof(float));
      memset(row + bcol * L, 0, (cols - bcol) * L * sizeof(float));
    }
  }
  const float* wb = p->packed + b * (taps + 1) * L;
  const sparrow_dwcv_args args = {s->ho,
                                  s->wo,
                                  taps,
                                  s->stride_h * cols * L,
                                  s->stride_w * L,
                                  (const size_t*)(ws + p->l.toff),
                                  t,
                                  wb,
                                  wb + taps * L,
                                  p->lo,
                                  p->hi,
                                  out};
  p->fn(&args);
  if (p->out != NULL)
    p->out(out, howo, n, p->y + c0 * howo);
  else
    sparrow_transpose_f32(howo, n, out, L, p->y + c0 * howo, howo);
}

/* Task t: its blocks, after the tap offsets and (register transposes) the padded positions and
 * the padding, once. */
static void dwcv_task(void* plan, size_t task) {
  const dwcv_plan* p = plan;
  if (task >= p->tasks) return;
  const sparrow_dwconv_shape* s = p->s;
  char* ws = p->workspace + task * p->l.total;
  const size_t cols = p->e.cols, L = p->lanes;
  size_t* toff = (size_t*)(ws + p->l.toff);
  for (size_t ky = 0; ky < s->kh; ky++)
    for (size_t kx = 0; kx < s->kw; kx++) toff[ky * s->kw + kx] = (ky * s->dilation_h * cols + kx * s->dilation_w) * L;
  if (p->in != NULL) {
    size_t* pos = (size_t*)(ws + p->l.pos);
    for (size_t iy = 0, q = 0; iy < s->h; iy++)
      for (size_t ix = 0; ix < s->w; ix++, q++) {
        const size_t r = iy + s->pad_top, c = ix + s->pad_left;
        pos[q] = r < p->e.rows && c < cols ? r * cols + c : SIZE_MAX;
      }
    memset(ws + p->l.t, 0, p->e.rows * cols * L * sizeof(float));
  }
  for (size_t b = p->blocks * task / p->tasks; b < p->blocks * (task + 1) / p->tasks; b++) dwcv_block(p, b, ws);
}

sparrow_status sparrow_dwcv(const sparrow_dwconv_shape* s, int isa, const float* x, const float* packed, float lo,
                            float hi, float* y, void* workspace, size_t workspace_bytes, int threads) {
  sparrow_status st = sparrow_dwconv_check(s);
  if (st != SPARROW_OK) return st;
  if (s->multiplier != 1) return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "channels in lanes: multiplier must be 1");
  if (x == NULL || packed == NULL || y == NULL) return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "NULL x, w or y");
  if (!(lo <= hi)) return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "clamp range [%g, %g] is empty", lo, hi);
  dwcv_plan p = {.s = s, .x = x, .packed = packed, .lo = lo, .hi = hi, .y = y, .workspace = workspace};
  p.fn = dwcv_fn(dwcv_isa(isa), &p.lanes);
  dwcv_tr(dwcv_isa(isa), &p.in, &p.out);
  if (!dwcv_layout_of(s, p.lanes, &p.l, &p.e)) return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "window too large");
  p.blocks = (s->channels + p.lanes - 1) / p.lanes;
  const size_t nt = threads < 1 ? 1 : (size_t)threads;
  p.tasks = nt < p.blocks ? nt : p.blocks;
  if (workspace == NULL || ((uintptr_t)workspace & 63) != 0 || workspace_bytes / p.tasks < p.l.total)
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "workspace: need %zu bytes, 64-byte aligned (got %zu)",
                        p.l.total * p.tasks, workspace_bytes);
  sparrow_parallel_for(p.tasks, threads, dwcv_task, &p);
  return SPARROW_OK;
}
