/* Direct sparse convolution (k x k, groups = 1): no im2col. The input's planes are copied once
 * into padded, stride-phase-split planes (window.h); each nonzero weight (m, c, ky, kx) becomes
 * an offset into them, so output row oy of channel m is a sum of nnz(m) shifted contiguous
 * rows, which is exactly what the depthwise row microkernels compute (dwconv/dwconv.h):
 *   y[m][oy][ox] = clamp(bias[m] + sum_t value[t] * padded[offset[t] + oy * row_step + ox])
 * It wins over im2col + SpMM when the weight is sparse enough that building the K x N im2col
 * matrix costs more than the multiply saves; the planner measures both. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/error.h"
#include "../dispatch/dispatch.h"
#include "dconv/dconv.h"
#include "direct.h"
#include "window.h"

#define MAX_WORKSPACE ((size_t)1 << 32)
#define ALIGN64 SPARROW_ALIGN64

/* Validates a create call and derives the window (multiplier 1), its extents, K and the padded
 * plane size (a multiple of 16 floats); rows: weight rows the caller will allocate K floats for. */
static sparrow_status setup(const sparrow_dwconv_shape* shape, size_t cout, const float* w, sparrow_direct_conv** out,
                            size_t rows, sparrow_dwconv_shape* s, extents* e, size_t* k, size_t* plane) {
  if (out == NULL) return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "NULL output");
  *out = NULL;
  sparrow_status st = sparrow_dwconv_check(shape);
  if (st != SPARROW_OK) return st;
  if (w == NULL || cout == 0 || cout > SPARROW_MAX_DIM)
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "direct convolution: NULL weight or %zu output channels", cout);
  *s = *shape;
  s->multiplier = 1;
  size_t total, ws;
  if (!sparrow_window_extents(s, e) || !sparrow_mul_ok(s->channels, e->taps, k) || !sparrow_mul_ok(*k, rows, &total))
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "direct convolution too large");
  *plane = (sparrow_window_plane_floats(s, e) + 15) / 16 * 16;
  if (!sparrow_mul_ok(*plane, s->channels, &ws) || !sparrow_mul_ok(ws, sizeof(float), &ws) || ws > MAX_WORKSPACE)
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "direct convolution: padded input of %zu channels too large",
                        s->channels);
  return SPARROW_OK;
}

sparrow_status sparrow_direct_conv_create(const sparrow_dwconv_shape* shape, size_t cout, const float* w,
                                          sparrow_direct_conv** out) {
  sparrow_dwconv_shape s;
  extents e;
  size_t k, plane;
  const sparrow_status st = setup(shape, cout, w, out, cout, &s, &e, &k, &plane);
  if (st != SPARROW_OK) return st;
  const size_t total = k * cout;
  size_t nnz = 0;
  for (size_t i = 0; i < total; i++) nnz += w[i] != 0.0f;
  sparrow_direct_conv* d = calloc(1, sizeof *d);
  if (d == NULL) return sparrow_fail(SPARROW_ERR_OUT_OF_MEMORY, "direct convolution");
  d->row_ptr = malloc((cout + 1) * sizeof(size_t));
  d->offsets = malloc((nnz ? nnz : 1) * sizeof(size_t));
  d->values = malloc((nnz ? nnz : 1) * sizeof(float));
  d->chan = malloc((nnz ? nnz : 1) * sizeof(uint32_t));
  if (d->row_ptr == NULL || d->offsets == NULL || d->values == NULL || d->chan == NULL) {
    sparrow_direct_conv_free(d);
    return sparrow_fail(SPARROW_ERR_OUT_OF_MEMORY, "direct convolution: %zu nonzeros", nnz);
  }
  d->s = s;
  d->cout = cout;
  d->e = e;
  d->plane = plane;
  d->fn = sparrow_dwconv_select(SPARROW_DWCONV_AUTO);
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
          d->chan[t] = (uint32_t)c;
          d->values[t++] = v;
        }
  }
  d->row_ptr[cout] = t;
  *out = d;
  return SPARROW_OK;
}

/* 1 when column j of panel q holds a nonzero. */
static int column_kept(const sparrow_direct_conv* d, size_t q, size_t j) {
  const float* c = d->wp + (q * d->k + j) * d->mr;
  for (size_t i = 0; i < d->mr; i++)
    if (c[i] != 0.0f) return 1;
  return 0;
}

/* Pixel mode: drops each panel's all-zero columns when that removes at least a tenth of the
 * weight (below it the per-panel offsets cost more than the skipped FMAs save). */
static sparrow_status compact_panels(sparrow_direct_conv* d) {
  const size_t mr = d->mr;
  size_t kept = 0;
  for (size_t q = 0; q < d->panels; q++)
    for (size_t j = 0; j < d->k; j++) kept += column_kept(d, q, j);
  if (kept * 10 > d->panels * d->k * 9) return SPARROW_OK;
  float* wp = aligned_alloc(64, ALIGN64((kept > 0 ? kept : 1) * mr * sizeof(float)));
  d->pkoff = malloc((kept > 0 ? kept : 1) * sizeof(size_t));
  d->pstart = malloc((d->panels + 1) * sizeof(size_t));
  if (wp == NULL || d->pkoff == NULL || d->pstart == NULL) {
    free(wp);
    return SPARROW_ERR_OUT_OF_MEMORY;
  }
  size_t t = 0;
  for (size_t q = 0; q < d->panels; q++) {
    d->pstart[q] = t;
    for (size_t j = 0; j < d->k; j++) {
      if (!column_kept(d, q, j)) continue;
      memcpy(wp + t * mr, d->wp + (q * d->k + j) * mr, mr * sizeof(float));
      d->pkoff[t++] = d->koff[j];
    }
  }
  d->pstart[d->panels] = t;
  free(d->wp);
  d->wp = wp;
  return SPARROW_OK;
}

/* Dense and pixel mode: the weight in panels of mr output channels, K-major inside a panel. */
static sparrow_status create_panels(const sparrow_dwconv_shape* shape, size_t cout, const float* w,
                                    sparrow_direct_conv** out, int pixel) {
  const size_t mr = pixel ? SPARROW_PCONV_NR : SPARROW_DCONV_MR;
  sparrow_dwconv_shape s;
  extents e;
  size_t k, plane;
  const sparrow_status st = setup(shape, cout, w, out, cout + mr, &s, &e, &k, &plane);
  if (st != SPARROW_OK) return st;
  sparrow_direct_conv* d = calloc(1, sizeof *d);
  if (d == NULL) return sparrow_fail(SPARROW_ERR_OUT_OF_MEMORY, "direct convolution");
  d->mr = mr;
  d->pixel = pixel;
  d->panels = (cout + mr - 1) / mr;
  d->wp = aligned_alloc(64, ALIGN64(d->panels * k * mr * sizeof(float)));
  d->koff = malloc(k * sizeof(size_t));
  if (d->wp == NULL || d->koff == NULL) {
    sparrow_direct_conv_free(d);
    return sparrow_fail(SPARROW_ERR_OUT_OF_MEMORY, "direct convolution: %zu x %zu weight", cout, k);
  }
  d->s = s;
  d->cout = cout;
  d->e = e;
  d->plane = plane;
  d->dense = 1;
  d->k = k;
  d->fn = sparrow_dwconv_select(SPARROW_DWCONV_AUTO);
  d->dfn = sparrow_dconv_select(SPARROW_DWCONV_AUTO);
  d->pfn = sparrow_pconv_select(SPARROW_DWCONV_AUTO);
  memset(d->wp, 0, d->panels * k * mr * sizeof(float));
  for (size_t m = 0; m < cout; m++)
    for (size_t j = 0; j < k; j++) {
      const float v = w[m * k + j];
      d->dense_nnz += v != 0.0f;
      d->wp[((m / mr) * k + j) * mr + m % mr] = v;
    }
  /* Raw mode where every tap is inside the input (no padding on any side). */
  d->raw = pixel && s.kh == 1 && s.kw == 1 && s.pad_top == 0 && s.pad_left == 0 && (s.ho - 1) * s.stride_h < s.h &&
           (s.wo - 1) * s.stride_w < s.w;
  for (size_t c = 0; c < s.channels; c++)
    for (size_t ky = 0; ky < s.kh; ky++)
      for (size_t kx = 0; kx < s.kw; kx++)
        d->koff[(c * s.kh + ky) * s.kw + kx] =
            d->raw ? c * s.h * s.w : c * plane + sparrow_window_tap_offset(&s, &e, ky, kx);
  if (pixel && compact_panels(d) != SPARROW_OK) {
    sparrow_direct_conv_free(d);
    return sparrow_fail(SPARROW_ERR_OUT_OF_MEMORY, "direct convolution: %zu x %zu weight", cout, k);
  }
  *out = d;
  return SPARROW_OK;
}

sparrow_status sparrow_direct_conv_create_dense(const sparrow_dwconv_shape* shape, size_t cout, const float* w,
                                                sparrow_direct_conv** out) {
  return create_panels(shape, cout, w, out, 0);
}

sparrow_status sparrow_direct_conv_create_pixel(const sparrow_dwconv_shape* shape, size_t cout, const float* w,
                                                sparrow_direct_conv** out) {
  return create_panels(shape, cout, w, out, 1);
}

void sparrow_direct_conv_free(sparrow_direct_conv* d) {
  if (d == NULL) return;
  free(d->row_ptr);
  free(d->offsets);
  free(d->values);
  free(d->chan);
  free(d->wp);
  free(d->koff);
  free(d->pstart);
  free(d->pkoff);
  free(d);
}

size_t sparrow_direct_conv_workspace_bytes(const sparrow_direct_conv* d) {
  return sparrow_direct_conv_lists_workspace_bytes(d, 0, 0);
}
size_t sparrow_direct_conv_nnz(const sparrow_direct_conv* d) { return d->dense ? d->dense_nnz : d->row_ptr[d->cout]; }
int sparrow_direct_conv_is_dense(const sparrow_direct_conv* d) { return d->dense; }
int sparrow_direct_conv_is_pixel(const sparrow_direct_conv* d) { return d->pixel; }
size_t sparrow_direct_conv_pixel_columns(const sparrow_direct_conv* d) {
  return d->pstart != NULL ? d->pstart[d->panels] : d->panels * d->k;
}

/* Output channels m of `list` entries [i0, i1) (list NULL: m in [i0, i1)) with the nonzeros
 * row_ptr/offsets/values (the conv's own, or the active copy in the workspace). */
static void rows_from(const sparrow_direct_conv* d, const float* buf, const size_t* row_ptr, const size_t* offsets,
                      const float* values, const uint32_t* list, size_t i0, size_t i1, const float* bias, float lo,
                      float hi, float* y, sparrow_dwconv_ukernel_fn fn) {
  const size_t row_step = d->s.stride_h * d->s.stride_w * d->e.phase_len;
  const size_t ho = d->s.ho, wo = d->s.wo;
  for (size_t i = i0; i < i1; i++) {
    const size_t m = list != NULL ? list[i] : i;
    const size_t t0 = row_ptr[m], nt = row_ptr[m + 1] - t0;
    const float b = bias != NULL ? bias[m] : 0.0f;
    fn(wo, ho, nt, buf, row_step, offsets + t0, values + t0, b, lo, hi, y + m * ho * wo);
  }
}

/* ---- active-channel lists ----------------------------------------------------------------
 * Workspace: the padded planes (as without lists; inactive input planes are left unpadded and
 * unread), then, with an input list, a copy of the nonzeros of active input channels for the
 * active output channels (row_ptr, offsets, values), one O(nnz) pass: the multiply costs
 * nnz * ho * wo. */

size_t sparrow_direct_planes_bytes(const sparrow_direct_conv* d) {
  /* Raw mode reads the input in place: no planes (one line, so a workspace is never empty). */
  if (d->raw) return 64;
  /* Slack after the last plane for the kernels' whole-vector loads (dconv.h, dwconv.h). */
  return ALIGN64((d->plane * d->s.channels + SPARROW_DCONV_SLACK + SPARROW_DWCONV_SLACK) * sizeof(float));
}

/* Bytes of the dense input-list copy (sparrow_direct_dense_active) after the planes. */
static size_t dense_active_bytes(const sparrow_direct_conv* d) {
  return ALIGN64(d->panels * d->k * d->mr * sizeof(float)) + ALIGN64(d->k * sizeof(size_t));
}

/* Pixel mode with an output list (full panels only): the kept rows gathered into panels of their
 * own (see sparrow_direct_conv_plan.out_y), after the input-list copy: the view of the
 * convolution, its weight panels, bias and output rows. */
typedef struct {
  sparrow_direct_conv* view;
  float* wp;
  float* bias;
  float* y;
} compact_rows;

static size_t compact_rows_bytes(const sparrow_direct_conv* d) {
  return ALIGN64(sizeof(sparrow_direct_conv)) + ALIGN64(d->panels * d->k * d->mr * sizeof(float)) +
         ALIGN64(d->cout * sizeof(float)) + ALIGN64(d->cout * d->s.ho * d->s.wo * sizeof(float));
}

static compact_rows compact_rows_at(const sparrow_direct_conv* d, void* workspace, int has_in) {
  char* q = (char*)workspace + sparrow_direct_planes_bytes(d) + (has_in ? dense_active_bytes(d) : 0);
  compact_rows c;
  c.view = (sparrow_direct_conv*)q;
  q += ALIGN64(sizeof(sparrow_direct_conv));
  c.wp = (float*)q;
  q += ALIGN64(d->panels * d->k * d->mr * sizeof(float));
  c.bias = (float*)q;
  c.y = (float*)(q + ALIGN64(d->cout * sizeof(float)));
  return c;
}

size_t sparrow_direct_conv_lists_workspace_bytes(const sparrow_direct_conv* d, int has_out, int has_in) {
  size_t b = sparrow_direct_planes_bytes(d);
  if (has_in && d->pstart != NULL) /* the active channels' columns, offsets and panel starts */
    return b + ALIGN64(d->pstart[d->panels] * d->mr * sizeof(float)) + ALIGN64(d->pstart[d->panels] * sizeof(size_t)) +
           ALIGN64((d->panels + 1) * sizeof(size_t)) + ALIGN64(d->s.channels);
  if (d->pixel && d->pstart == NULL && has_out) b += compact_rows_bytes(d);
  if (has_in && d->dense) /* the active channels' weight rows and offsets (sparrow_direct_dense_active) */
    return b + dense_active_bytes(d);
  if (has_in) {
    const size_t nnz = d->row_ptr[d->cout];
    b += ALIGN64((d->cout + 1) * sizeof(size_t)) + ALIGN64(nnz * sizeof(size_t)) + ALIGN64(nnz * sizeof(float)) +
         ALIGN64(d->s.channels);
  }
  return b;
}

static int increasing_below(const uint32_t* v, size_t n, size_t limit) {
  for (size_t i = 0; i < n; i++)
    if (v[i] >= limit || (i > 0 && v[i] <= v[i - 1])) return 0;
  return 1;
}

sparrow_status sparrow_direct_conv_lists_check(const sparrow_direct_conv* d, const sparrow_direct_conv_lists* l,
                                               const void* workspace, size_t workspace_bytes) {
  sparrow_clear_error();
  if (d == NULL || l == NULL) return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "NULL conv or lists");
  if (l->out_channels != NULL && !increasing_below(l->out_channels, l->n_out_channels, d->cout))
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT,
                        "active output channels must be strictly increasing and below %zu", d->cout);
  if (l->in_channels != NULL && !increasing_below(l->in_channels, l->n_in_channels, d->s.channels))
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "active input channels must be strictly increasing and below %zu",
                        d->s.channels);
  const size_t need = sparrow_direct_conv_lists_workspace_bytes(d, l->out_channels != NULL, l->in_channels != NULL);
  if (workspace == NULL || ((uintptr_t)workspace & 63) != 0 || workspace_bytes < need)
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "workspace: need %zu bytes, 64-byte aligned (got %zu)", need,
                        workspace_bytes);
  return SPARROW_OK;
}

/* The active copy inside the workspace (valid after prepare when there is an input list). */
typedef struct {
  size_t* row_ptr;
  size_t* offsets;
  float* values;
  uint8_t* mask;
} active_copy;

static active_copy copy_at(const sparrow_direct_conv* d, void* workspace) {
  char* p = (char*)workspace + sparrow_direct_planes_bytes(d);
  const size_t nnz = d->row_ptr[d->cout];
  active_copy a;
  a.row_ptr = (size_t*)p;
  p += ALIGN64((d->cout + 1) * sizeof(size_t));
  a.offsets = (size_t*)p;
  p += ALIGN64(nnz * sizeof(size_t));
  a.values = (float*)p;
  p += ALIGN64(nnz * sizeof(float));
  a.mask = (uint8_t*)p;
  return a;
}

sparrow_direct_dense_active sparrow_direct_dense_active_at(const sparrow_direct_conv* d, void* workspace) {
  char* q = (char*)workspace + sparrow_direct_planes_bytes(d);
  sparrow_direct_dense_active a = {0};
  a.wp = (float*)q;
  if (d->pstart != NULL) {
    const size_t n = d->pstart[d->panels];
    q += ALIGN64(n * d->mr * sizeof(float));
    a.koff = (size_t*)q;
    q += ALIGN64(n * sizeof(size_t));
    a.pstart = (size_t*)q;
    a.mask = (uint8_t*)(q + ALIGN64((d->panels + 1) * sizeof(size_t)));
    return a;
  }
  a.koff = (size_t*)(q + ALIGN64(d->panels * d->k * d->mr * sizeof(float)));
  return a;
}

/* Compacted pixel mode with an input list: each panel's kept columns of active channels (the
 * input channel of a column is its offset / plane). */
static void copy_compact_active(const sparrow_direct_conv* d, const sparrow_direct_conv_lists* l, void* workspace) {
  const sparrow_direct_dense_active a = sparrow_direct_dense_active_at(d, workspace);
  memset(a.mask, 0, d->s.channels);
  for (size_t i = 0; i < l->n_in_channels; i++) a.mask[l->in_channels[i]] = 1;
  size_t t = 0;
  for (size_t q = 0; q < d->panels; q++) {
    a.pstart[q] = t;
    for (size_t j = d->pstart[q]; j < d->pstart[q + 1]; j++) {
      if (!a.mask[d->pkoff[j] / d->plane]) continue;
      memcpy(a.wp + t * d->mr, d->wp + j * d->mr, d->mr * sizeof(float));
      a.koff[t++] = d->pkoff[j];
    }
  }
  a.pstart[d->panels] = t;
}

/* One O(active weights) pass, so that the multiply costs in proportion to the active channels. */
static void copy_dense_active(const sparrow_direct_conv* d, const sparrow_direct_conv_lists* l, void* workspace) {
  if (d->pstart != NULL) {
    copy_compact_active(d, l, workspace);
    return;
  }
  const sparrow_direct_dense_active a = sparrow_direct_dense_active_at(d, workspace);
  const size_t taps = d->s.kh * d->s.kw, ka = l->n_in_channels * taps, mr = d->mr;
  for (size_t i = 0; i < l->n_in_channels; i++)
    memcpy(a.koff + i * taps, d->koff + l->in_channels[i] * taps, taps * sizeof(size_t));
  for (size_t q = 0; q < d->panels; q++)
    for (size_t i = 0; i < l->n_in_channels; i++)
      memcpy(a.wp + (q * ka + i * taps) * mr, d->wp + (q * d->k + l->in_channels[i] * taps) * mr,
             taps * mr * sizeof(float));
}

/* With an input list: the nonzeros of active input channels for the active output channels. */
static void copy_active(const sparrow_direct_conv* d, const sparrow_direct_conv_lists* l, void* workspace) {
  if (l->in_channels == NULL) return;
  if (d->dense) {
    copy_dense_active(d, l, workspace);
    return;
  }
  const active_copy a = copy_at(d, workspace);
  memset(a.mask, 0, d->s.channels);
  for (size_t i = 0; i < l->n_in_channels; i++) a.mask[l->in_channels[i]] = 1;
  const size_t nout = l->out_channels != NULL ? l->n_out_channels : d->cout;
  size_t q = 0, next = 0;
  for (size_t i = 0; i < nout; i++) {
    const size_t m = l->out_channels != NULL ? l->out_channels[i] : i;
    for (; next <= m; next++) a.row_ptr[next] = q;
    for (size_t t = d->row_ptr[m]; t < d->row_ptr[m + 1]; t++) {
      a.offsets[q] = d->offsets[t];
      a.values[q] = d->values[t];
      q += a.mask[d->chan[t]];
    }
  }
  for (; next <= d->cout; next++) a.row_ptr[next] = q;
}

static size_t list_len(const uint32_t* list, size_t n, size_t all) { return list != NULL ? n : all; }

/* Pixel mode, full panels, an output list: 1 when gathering the kept rows into panels of their
 * own pays. The kernels skip panels without an active row, but a gate keeping half the rows at
 * random leaves hardly any 16-row panel empty (the digits model's learned gates ran their gated
 * layers at full cost). The gather moves compact panels x 16 x K floats to save (active -
 * compact) panels x 16 x K x pixels multiply-adds: measured on the digits model's learned gates
 * (Zen 4, 1 thread, half the rows kept), 32 rows on 8x8 outputs (K = 288) gained 1.12-1.28x per
 * layer and 64 rows on 4x4 outputs (K = 576) lost (0.6-0.7x), so it runs where the saved
 * multiply-adds per moved float reach 32. Counted in half panels: a panel of at most 8 rows
 * (the layer's last, or the last compact one) runs the kernels' 8-channel form at about half
 * the cost, so a 16-row layer keeping 8 rows gains too. */
#define COMPACT_MIN_PIXELS 32
static size_t half_panels(size_t rows) {
  const size_t nr = SPARROW_PCONV_NR, half = SPARROW_PCONV_NR / 2;
  return rows / nr * 2 + (rows % nr == 0 ? 0 : rows % nr <= half ? 1 : 2);
}
static int compact_pays(const sparrow_direct_conv* d, const sparrow_direct_conv_lists* l) {
  if (!d->pixel || d->pstart != NULL || l->out_channels == NULL) return 0;
  size_t active = 0;
  for (size_t q = 0; q < d->panels; q++)
    if (sparrow_direct_panel_active(l, q, d->mr))
      active += half_panels(d->cout - q * d->mr < d->mr ? d->cout - q * d->mr : d->mr);
  const size_t compact = half_panels(l->n_out_channels);
  return compact < active && (active - compact) * d->s.ho * d->s.wo >= COMPACT_MIN_PIXELS * compact;
}

/* The kept rows in panels of their own (after copy_active: with an input list, gathered from its
 * copy, K the active channels' columns): the plan then runs a view of the convolution with only
 * those rows into a compact output, which finish() moves into place. One pass over the kept
 * rows' weights (kept rows x K floats), against a multiply of kept rows x K x pixels. */
static void compact_outputs(sparrow_direct_conv_plan* p, const sparrow_direct_conv* d) {
  const int has_in = p->lists.in_channels != NULL;
  const compact_rows c = compact_rows_at(d, p->workspace, has_in);
  const float* src = d->wp;
  const size_t* koff = d->koff;
  size_t k = d->k;
  if (has_in) {
    const sparrow_direct_dense_active a = sparrow_direct_dense_active_at(d, p->workspace);
    src = a.wp, koff = a.koff, k = p->lists.n_in_channels * d->s.kh * d->s.kw;
  }
  const size_t nr = d->mr, n = p->lists.n_out_channels, panels = (n + nr - 1) / nr;
  const uint32_t* list = p->lists.out_channels;
  for (size_t q = 0; q < panels; q++) {
    /* Lane by lane within each of the panel's K rows (a destination line written once, its
     * sources a few lines of the same source rows); lanes past the last kept row hold zeros. */
    const size_t lanes = n - q * nr < nr ? n - q * nr : nr;
    size_t from[SPARROW_PCONV_NR];
    for (size_t j = 0; j < lanes; j++) from[j] = list[q * nr + j] / nr * k * nr + list[q * nr + j] % nr;
    float* restrict dst = c.wp + q * k * nr;
    for (size_t t = 0; t < k; t++) {
      for (size_t j = 0; j < lanes; j++) dst[t * nr + j] = src[from[j] + t * nr];
      for (size_t j = lanes; j < nr; j++) dst[t * nr + j] = 0.0f;
    }
  }
  if (p->bias != NULL) {
    for (size_t i = 0; i < n; i++) c.bias[i] = p->bias[list[i]];
    p->bias = c.bias;
  }
  *c.view = *d;
  c.view->cout = n;
  c.view->panels = panels;
  c.view->wp = c.wp;
  c.view->koff = (size_t*)koff;
  c.view->k = k;
  p->conv = c.view;
  p->out_conv = d;
  p->out_y = p->y;
  p->y = c.y;
}

void sparrow_direct_conv_prepare(sparrow_direct_conv_plan* p, const sparrow_direct_conv* d,
                                 const sparrow_direct_conv_lists* lists, const float* x, const float* bias, float lo,
                                 float hi, float* y, void* workspace, int threads, size_t ukernel) {
  const size_t nt = threads < 1 ? 1 : (size_t)threads;
  *p = (sparrow_direct_conv_plan){
      .conv = d, .x = x, .bias = bias, .lo = lo, .hi = hi, .y = y, .workspace = workspace, .images = 1};
  if (lists != NULL) p->lists = *lists;
  p->n_in = list_len(p->lists.in_channels, p->lists.n_in_channels, d->s.channels);
  p->n_out = list_len(p->lists.out_channels, p->lists.n_out_channels, d->cout);
  if (d->dense) {
    /* With an input list the active channels' weights are copied first, so the multiply runs
     * over them only (inactive planes are neither padded nor read). Tasks are
     * ranges of weight panels; with an output list, panels without an active row are skipped
     * and finish() zeroes the inactive rows of the others. */
    p->pad_tasks = nt < p->n_in ? nt : p->n_in;
    p->row_tasks = nt == 1 ? 1 : nt * 4 < d->panels ? nt * 4 : d->panels;
    p->pixel_chunks = 1;
    if (d->pixel) {
      p->pfn = ukernel == SPARROW_DWCONV_AUTO ? d->pfn : sparrow_pconv_select(ukernel);
      /* Several panels per call need full panels (not compacted, each with its own K). */
      p->pfn2 = d->pstart == NULL ? sparrow_pconv_select_wide(ukernel, 2) : NULL;
      p->pfn4 = d->pstart == NULL ? sparrow_pconv_select_wide(ukernel, 4) : NULL;
      copy_active(d, &p->lists, workspace);
      if (compact_pays(d, &p->lists)) compact_outputs(p, d);
      if (d->raw) p->pad_tasks = 0;
      sparrow_direct_pixel_split(p, nt);
      return;
    }
    p->dfn = ukernel == SPARROW_DWCONV_AUTO ? d->dfn : sparrow_dconv_select(ukernel);
    copy_active(d, &p->lists, workspace);
    return;
  }
  p->pad_tasks = nt < p->n_in ? nt : p->n_in;
  p->row_tasks = nt == 1 ? 1 : nt * 4 < p->n_out ? nt * 4 : p->n_out;
  p->fn = ukernel == SPARROW_DWCONV_AUTO ? d->fn : sparrow_dwconv_select(ukernel);
  copy_active(d, &p->lists, workspace);
}

void sparrow_direct_conv_pad_task(void* plan, size_t t) {
  const sparrow_direct_conv_plan* p = plan;
  if (t >= p->pad_tasks) return;
  const sparrow_direct_conv* d = p->conv;
  const uint32_t* list = p->lists.in_channels;
  const size_t units = p->n_in * p->images, image_ws = sparrow_direct_planes_bytes(d) / sizeof(float);
  const size_t image_in = d->s.channels * d->s.h * d->s.w;
  float* buf = p->workspace;
  for (size_t u = units * t / p->pad_tasks; u < units * (t + 1) / p->pad_tasks; u++) {
    const size_t img = u / p->n_in, i = u % p->n_in, c = list != NULL ? list[i] : i;
    sparrow_window_pad_plane(&d->s, &d->e, p->x + img * image_in + c * d->s.h * d->s.w,
                             buf + img * image_ws + c * d->plane);
  }
}

/* Dense mode: 1 when panel q (of mr rows) holds an active output row (no list: all do). */
int sparrow_direct_panel_active(const sparrow_direct_conv_lists* l, size_t q, size_t mr) {
  if (l->out_channels == NULL) return 1;
  const size_t r0 = q * mr;
  size_t lo = 0, hi = l->n_out_channels;
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    if (l->out_channels[mid] < r0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < l->n_out_channels && l->out_channels[lo] < r0 + mr;
}

/* Dense mode, task t: weight panels [p0, p1) over every output row. K runs in slices of whole
 * input channels whose input rows for one output row (kh rows of each plane) fit in 16 KiB, so
 * the kernels' loads hit L1 (partial sums go through Y); within a slice, groups of panels whose
 * weight slices (about 128 KiB) stay in L2 while every output row passes: one group for
 * ResNet-18's 64-channel layers (the input rows an output row needs stay in cache across the
 * panels), one panel at a time for its 512-channel ones, whose 9 MiB of weights an output-row
 * loop outside would stream from L3 once per row. With an input list, K is the active
 * channels' (copied by prepare); none active: bias only (K = 0). */
static void dense_rows(const sparrow_direct_conv_plan* p, size_t t) {
  const sparrow_direct_conv* d = p->conv;
  const size_t p0 = d->panels * t / p->row_tasks, p1 = d->panels * (t + 1) / p->row_tasks;
  const size_t row_step = d->s.stride_h * d->s.stride_w * d->e.phase_len, ho = d->s.ho, wo = d->s.wo;
  const size_t taps = d->s.kh * d->s.kw;
  const float* buf = p->workspace;
  const float* wp = d->wp;
  const size_t* koff = d->koff;
  size_t channels = d->s.channels;
  if (p->lists.in_channels != NULL) {
    const sparrow_direct_dense_active a = sparrow_direct_dense_active_at(d, p->workspace);
    wp = a.wp, koff = a.koff, channels = p->lists.n_in_channels;
  }
  const size_t k = channels * taps; /* the panels' row count (K) */
  const size_t ch_row_bytes = d->s.kh * d->s.stride_w * d->e.phase_len * sizeof(float);
  const size_t want = ch_row_bytes >= (16u << 10) ? 1 : (16u << 10) / ch_row_bytes;
  const size_t slices = channels == 0 ? 1 : (channels + want - 1) / want;
  for (size_t sl = 0; sl < slices; sl++) {
    const size_t c0 = channels * sl / slices, c1 = channels * (sl + 1) / slices;
    const size_t k0 = c0 * taps, kc = (c1 - c0) * taps;
    const size_t panel_bytes = kc * SPARROW_DCONV_MR * sizeof(float);
    const size_t group = panel_bytes == 0 ? p1 - p0 + 1 : panel_bytes >= (128u << 10) ? 1 : (128u << 10) / panel_bytes;
    for (size_t g0 = p0; g0 < p1; g0 += group) {
      const size_t g1 = p1 - g0 < group ? p1 : g0 + group;
      for (size_t oy = 0; oy < ho; oy++) {
        for (size_t q = g0; q < g1; q++) {
          if (!sparrow_direct_panel_active(&p->lists, q, SPARROW_DCONV_MR)) continue;
          const size_t r0 = q * SPARROW_DCONV_MR;
          const size_t rows = d->cout - r0 < SPARROW_DCONV_MR ? d->cout - r0 : SPARROW_DCONV_MR;
          p->dfn(kc, wp + (q * k + k0) * SPARROW_DCONV_MR, koff + k0, buf + oy * row_step, wo, rows,
                 p->bias != NULL ? p->bias + r0 : NULL, p->lo, p->hi, p->y + (r0 * ho + oy) * wo, ho * wo, sl == 0,
                 sl + 1 == slices);
        }
        /* A fused residual (no lists): added to the group's rows once the last slice wrote them. */
        if (p->residual != NULL && sl + 1 == slices) {
          const size_t c1 = g1 * SPARROW_DCONV_MR < d->cout ? g1 * SPARROW_DCONV_MR : d->cout;
          for (size_t c = g0 * SPARROW_DCONV_MR; c < c1; c++)
            sparrow_direct_residual(p->y + (c * ho + oy) * wo, p->residual + (c * ho + oy) * wo, wo, p->residual_relu);
        }
      }
    }
  }
}

sparrow_status sparrow_direct_conv_set_residual(sparrow_direct_conv_plan* p, const float* residual, int relu) {
  sparrow_clear_error();
  if (p == NULL || p->conv == NULL || residual == NULL)
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "NULL plan or residual");
  if (!p->conv->dense)
    return sparrow_fail(SPARROW_ERR_UNSUPPORTED, "a fused residual needs the dense or pixel-major mode");
  if (p->lists.in_channels != NULL || p->lists.out_channels != NULL)
    return sparrow_fail(SPARROW_ERR_UNSUPPORTED, "a fused residual cannot run with active-channel lists");
  if (!(p->lo == -INFINITY && p->hi == INFINITY))
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "a fused residual comes before the clamp: prepare without one");
  p->residual = residual;
  p->residual_relu = relu != 0;
  return SPARROW_OK;
}

void sparrow_direct_conv_rows_task(void* plan, size_t t) {
  const sparrow_direct_conv_plan* p = plan;
  if (t >= p->row_tasks) return;
  const sparrow_direct_conv* d = p->conv;
  if (d->pixel) {
    sparrow_direct_pixel_rows(p, t);
    return;
  }
  if (d->dense) {
    dense_rows(p, t);
    return;
  }
  const size_t i0 = p->n_out * t / p->row_tasks, i1 = p->n_out * (t + 1) / p->row_tasks;
  if (p->lists.in_channels == NULL) {
    rows_from(d, p->workspace, d->row_ptr, d->offsets, d->values, p->lists.out_channels, i0, i1, p->bias, p->lo, p->hi,
              p->y, p->fn);
    return;
  }
  const active_copy a = copy_at(d, p->workspace);
  rows_from(d, p->workspace, a.row_ptr, a.offsets, a.values, p->lists.out_channels, i0, i1, p->bias, p->lo, p->hi, p->y,
            p->fn);
}

void sparrow_direct_conv_finish(const sparrow_direct_conv_plan* p) {
  const sparrow_direct_conv* d = p->out_y != NULL ? p->out_conv : p->conv;
  if (p->lists.out_channels == NULL) return;
  float* y = p->out_y != NULL ? p->out_y : p->y;
  const size_t plane = d->s.ho * d->s.wo;
  size_t next = 0;
  for (size_t m = 0; m < d->cout; m++) {
    if (next < p->lists.n_out_channels && p->lists.out_channels[next] == m) {
      if (p->out_y != NULL) memcpy(y + m * plane, p->y + next * plane, plane * sizeof(float));
      next++;
      continue;
    }
    memset(y + m * plane, 0, plane * sizeof(float));
  }
}

sparrow_status sparrow_direct_conv_run_lists(const sparrow_direct_conv* d, const sparrow_direct_conv_lists* l,
                                             const float* x, const float* bias, float lo, float hi, float* y,
                                             void* workspace, size_t workspace_bytes, int threads) {
  sparrow_status st = sparrow_direct_conv_lists_check(d, l, workspace, workspace_bytes);
  if (st != SPARROW_OK) return st;
  if (x == NULL || y == NULL) return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "NULL x or y");
  if (!(lo <= hi)) return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "clamp range [%g, %g] is empty", lo, hi);
  sparrow_direct_conv_plan p;
  sparrow_direct_conv_prepare(&p, d, l, x, bias, lo, hi, y, workspace, threads, SPARROW_DWCONV_AUTO);
  sparrow_parallel_for(p.pad_tasks, threads, sparrow_direct_conv_pad_task, &p);
  sparrow_parallel_for(p.row_tasks, threads, sparrow_direct_conv_rows_task, &p);
  sparrow_direct_conv_finish(&p);
  return SPARROW_OK;
}

sparrow_status sparrow_direct_conv_run(const sparrow_direct_conv* d, const float* x, const float* bias, float lo,
                                       float hi, float* y, void* workspace, size_t workspace_bytes, int threads) {
  const sparrow_direct_conv_lists all = {0};
  return sparrow_direct_conv_run_lists(d, &all, x, bias, lo, hi, y, workspace, workspace_bytes, threads);
}

size_t sparrow_direct_conv_batch_workspace_bytes(const sparrow_direct_conv* d, size_t images) {
  if (!d->pixel || images <= 1) return sparrow_direct_conv_workspace_bytes(d);
  size_t b;
  return sparrow_mul_ok(sparrow_direct_planes_bytes(d), images, &b) ? b : SIZE_MAX;
}

void sparrow_direct_conv_prepare_batch(sparrow_direct_conv_plan* p, const sparrow_direct_conv* d, size_t images,
                                       const float* x, const float* bias, float lo, float hi, float* y, void* workspace,
                                       int threads, size_t ukernel) {
  const size_t nt = threads < 1 ? 1 : (size_t)threads;
  sparrow_direct_conv_prepare(p, d, NULL, x, bias, lo, hi, y, workspace, threads, ukernel);
  if (!d->pixel) return;
  p->images = images;
  p->pad_tasks = d->raw ? 0 : nt < p->n_in * images ? nt : p->n_in * images;
  sparrow_direct_pixel_split(p, nt);
}

sparrow_status sparrow_direct_conv_run_batch(const sparrow_direct_conv* d, size_t images, const float* x,
                                             const float* bias, float lo, float hi, float* y, void* workspace,
                                             size_t workspace_bytes, int threads) {
  sparrow_clear_error();
  if (d == NULL || x == NULL || y == NULL) return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "NULL conv, x or y");
  if (!(lo <= hi)) return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "clamp range [%g, %g] is empty", lo, hi);
  const size_t need = sparrow_direct_conv_batch_workspace_bytes(d, images);
  if (workspace == NULL || ((uintptr_t)workspace & 63) != 0 || workspace_bytes < need)
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "workspace: need %zu bytes, 64-byte aligned (got %zu)", need,
                        workspace_bytes);
  const size_t image_in = d->s.channels * d->s.h * d->s.w, image_out = d->cout * d->s.ho * d->s.wo;
  sparrow_direct_conv_plan p;
  if (!d->pixel) {
    for (size_t i = 0; i < images; i++) {
      sparrow_direct_conv_prepare(&p, d, NULL, x + i * image_in, bias, lo, hi, y + i * image_out, workspace, threads,
                                  SPARROW_DWCONV_AUTO);
      sparrow_parallel_for(p.pad_tasks, threads, sparrow_direct_conv_pad_task, &p);
      sparrow_parallel_for(p.row_tasks, threads, sparrow_direct_conv_rows_task, &p);
    }
    return SPARROW_OK;
  }
  sparrow_direct_conv_prepare_batch(&p, d, images, x, bias, lo, hi, y, workspace, threads, SPARROW_DWCONV_AUTO);
  sparrow_parallel_for(p.pad_tasks, threads, sparrow_direct_conv_pad_task, &p);
  sparrow_parallel_for(p.row_tasks, threads, sparrow_direct_conv_rows_task, &p);
  return SPARROW_OK;
}
