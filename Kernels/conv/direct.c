/* Direct sparse convolution (k x k, groups = 1): no im2col. The input's planes are copied once
 * into padded, stride-phase-split planes (window.h); each nonzero weight (m, c, ky, kx) becomes
 * an offset into them, so output row oy of channel m is a sum of nnz(m) shifted contiguous
 * rows, which is exactly what the depthwise row microkernels compute (dwconv/dwconv.h):
 *   y[m][oy][ox] = clamp(bias[m] + sum_t value[t] * padded[offset[t] + oy * row_step + ox])
 * It wins over im2col + SpMM when the weight is sparse enough that building the K x N im2col
 * matrix costs more than the multiply saves; the planner measures both. */
#include <stdlib.h>
#include <string.h>

#include "../common/error.h"
#include "../dispatch/dispatch.h"
#include "dconv/dconv.h"
#include "window.h"

#define MAX_WORKSPACE ((size_t)1 << 32)
#define ALIGN64 SPARROW_ALIGN64

struct sparrow_direct_conv {
  sparrow_dwconv_shape s; /* channels = input channels, multiplier 1 */
  size_t cout;
  extents e;
  size_t plane;    /* floats per padded plane, a multiple of 16 (64-byte aligned planes) */
  size_t* row_ptr; /* cout + 1 */
  size_t* offsets; /* per nonzero: c * plane + tap offset */
  float* values;
  uint32_t* chan;               /* per nonzero: its input channel c (active-channel lists) */
  sparrow_dwconv_ukernel_fn fn; /* the row kernel, bound when created */
  /* Dense mode (sparrow_direct_conv_create_dense; row_ptr, offsets, values and chan are NULL):
   * the whole weight in panels of SPARROW_DCONV_MR output channels (dconv/dconv.h), each k's
   * input offset, and the dense microkernel bound when created. */
  int dense;
  size_t k, panels, dense_nnz;
  float* wp;    /* panels * k * mr */
  size_t* koff; /* k */
  sparrow_dconv_ukernel_fn dfn;
  /* Pixel mode (sparrow_direct_conv_create_pixel; dense is 1 too): panels of
   * SPARROW_PCONV_NR output channels, the same K-major packing, and the pixel-major kernel. */
  int pixel;
  size_t mr; /* output channels per panel: SPARROW_DCONV_MR, or SPARROW_PCONV_NR in pixel mode */
  sparrow_pconv_ukernel_fn pfn;
  /* Pixel mode, compacted (panels sharing zero columns, e.g. N:M pruned with the pattern shared
   * by the panel's rows, `prune --share-rows 16`): panel q keeps only its columns with a nonzero,
   * entries [pstart[q], pstart[q + 1]) of wp (mr floats each) and of pkoff (their input
   * offsets), so its kernel call skips the zero columns' FMAs. NULL: every panel has all k. */
  size_t* pstart; /* panels + 1 */
  size_t* pkoff;
};

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
  for (size_t c = 0; c < s.channels; c++)
    for (size_t ky = 0; ky < s.kh; ky++)
      for (size_t kx = 0; kx < s.kw; kx++)
        d->koff[(c * s.kh + ky) * s.kw + kx] = c * plane + sparrow_window_tap_offset(&s, &e, ky, kx);
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

static size_t planes_bytes(const sparrow_direct_conv* d) {
  /* Slack after the last plane for the kernels' whole-vector loads (dconv.h, dwconv.h). */
  return ALIGN64((d->plane * d->s.channels + SPARROW_DCONV_SLACK + SPARROW_DWCONV_SLACK) * sizeof(float));
}

size_t sparrow_direct_conv_lists_workspace_bytes(const sparrow_direct_conv* d, int has_out, int has_in) {
  (void)has_out;
  size_t b = planes_bytes(d);
  if (has_in && d->pstart != NULL) /* the active channels' columns, offsets and panel starts */
    return b + ALIGN64(d->pstart[d->panels] * d->mr * sizeof(float)) + ALIGN64(d->pstart[d->panels] * sizeof(size_t)) +
           ALIGN64((d->panels + 1) * sizeof(size_t)) + ALIGN64(d->s.channels);
  if (has_in && d->dense) /* the active channels' weight rows and offsets (dense_active) */
    return b + ALIGN64(d->panels * d->k * d->mr * sizeof(float)) + ALIGN64(d->k * sizeof(size_t));
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
  char* p = (char*)workspace + planes_bytes(d);
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

/* Dense mode with an input list: the weight panels and input offsets of the active channels
 * only (k = active channels * taps), in the workspace after the planes. */
typedef struct {
  float* wp;
  size_t* koff;
  size_t* pstart; /* compacted pixel mode: the active columns' panel starts (panels + 1) */
  uint8_t* mask;  /* compacted pixel mode: 1 per active input channel */
} dense_active;

static dense_active dense_active_at(const sparrow_direct_conv* d, void* workspace) {
  char* q = (char*)workspace + planes_bytes(d);
  dense_active a = {0};
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
  const dense_active a = dense_active_at(d, workspace);
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
  const dense_active a = dense_active_at(d, workspace);
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

/* Pixel mode: 6-pixel blocks per image (a block never spans two images). */
static size_t image_blocks(const sparrow_direct_conv* d) {
  return (d->s.ho * d->s.wo + SPARROW_PCONV_MR - 1) / SPARROW_PCONV_MR;
}

/* Pixel mode: panels per group that tasks keep together (the widest multi-panel call). */
static size_t wide_group(const sparrow_direct_conv_plan* p) { return p->pfn4 != NULL ? 4 : p->pfn2 != NULL ? 2 : 1; }

/* Pixel mode: with too few panels to share, each panel range also splits its pixel blocks (of
 * every image of the batch). When the weight is smaller than the padded input, the tasks split
 * the pixels alone, each running every panel: a task per panel range streams the whole input
 * once per range, where a pixel chunk reads its own input rows once for all panels and only the
 * (smaller) weight is read by every thread. Measured on ResNet-18's 7x7/2 stem (Zen 4, 2
 * threads, C harness): 1.52 -> 1.43 ms; the 64-channel 3x3 layers (0.86 MB input, 0.15 MB
 * weight) unchanged within noise. */
static void split_pixel_chunks(sparrow_direct_conv_plan* p, size_t nt) {
  const sparrow_direct_conv* d = p->conv;
  /* Wide calls: tasks split groups of panels, never one. */
  const size_t g = wide_group(p), units = (d->panels + g - 1) / g;
  const size_t blocks = image_blocks(d) * p->images;
  const size_t weight = (d->pstart != NULL ? d->pstart[d->panels] : d->panels * d->k) * d->mr;
  if (nt > 1 && weight < planes_bytes(d) / sizeof(float) * p->images && blocks >= nt) {
    p->row_tasks = p->pixel_chunks = nt * 4 < blocks ? nt * 4 : blocks;
    return;
  }
  p->row_tasks = nt == 1 ? 1 : nt * 4 < units ? nt * 4 : units;
  p->pixel_chunks = 1;
  if (nt > 1 && units < nt * 2) p->pixel_chunks = (nt * 2 + units - 1) / units;
  if (p->pixel_chunks > blocks) p->pixel_chunks = blocks;
  p->row_tasks *= p->pixel_chunks;
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
      split_pixel_chunks(p, nt);
    } else {
      p->dfn = ukernel == SPARROW_DWCONV_AUTO ? d->dfn : sparrow_dconv_select(ukernel);
    }
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
  const size_t units = p->n_in * p->images, image_ws = planes_bytes(d) / sizeof(float);
  const size_t image_in = d->s.channels * d->s.h * d->s.w;
  float* buf = p->workspace;
  for (size_t u = units * t / p->pad_tasks; u < units * (t + 1) / p->pad_tasks; u++) {
    const size_t img = u / p->n_in, i = u % p->n_in, c = list != NULL ? list[i] : i;
    sparrow_window_pad_plane(&d->s, &d->e, p->x + img * image_in + c * d->s.h * d->s.w,
                             buf + img * image_ws + c * d->plane);
  }
}

/* Dense mode: 1 when panel q (of mr rows) holds an active output row (no list: all do). */
static int panel_active(const sparrow_direct_conv_lists* l, size_t q, size_t mr) {
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
    const dense_active a = dense_active_at(d, p->workspace);
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
      for (size_t oy = 0; oy < ho; oy++)
        for (size_t q = g0; q < g1; q++) {
          if (!panel_active(&p->lists, q, SPARROW_DCONV_MR)) continue;
          const size_t r0 = q * SPARROW_DCONV_MR;
          const size_t rows = d->cout - r0 < SPARROW_DCONV_MR ? d->cout - r0 : SPARROW_DCONV_MR;
          p->dfn(kc, wp + (q * k + k0) * SPARROW_DCONV_MR, koff + k0, buf + oy * row_step, wo, rows,
                 p->bias != NULL ? p->bias + r0 : NULL, p->lo, p->hi, p->y + (r0 * ho + oy) * wo, ho * wo, sl == 0,
                 sl + 1 == slices);
        }
    }
  }
}

/* Pixel mode: the MR window origins of pixel block b of the batch (past the last pixel, the last
 * again) and, in *yoff, where the block's output starts (its image's, channel 0). */
static size_t block_pixels(const sparrow_direct_conv_plan* p, const float* buf, size_t b, const float** px,
                           size_t* yoff) {
  const sparrow_direct_conv* d = p->conv;
  const size_t row_step = d->s.stride_h * d->s.stride_w * d->e.phase_len, wo = d->s.wo, npix = d->s.ho * wo;
  const size_t bpi = image_blocks(d), img = b / bpi;
  buf += img * (planes_bytes(d) / sizeof(float));
  const size_t q0 = (b % bpi) * SPARROW_PCONV_MR, pixels = npix - q0 < SPARROW_PCONV_MR ? npix - q0 : SPARROW_PCONV_MR;
  *yoff = img * d->cout * npix + q0;
  size_t oy = q0 / wo, ox = q0 % wo;
  for (size_t i = 0; i < SPARROW_PCONV_MR; i++) {
    px[i] = buf + oy * row_step + ox;
    if (i + 1 < pixels && ++ox == wo) ox = 0, oy++;
  }
  return pixels;
}

/* K slices of the pixel mode: a 16 KiB slice of a weight panel stays in L1 while up to
 * PCONV_PART_BLOCKS pixel blocks pass, their partial sums on the stack. */
#define PCONV_SLICE_K 256
#define PCONV_PART_BLOCKS 64

/* Pixel mode: panel q's columns (K), packed weight and input offsets. */
typedef struct {
  const float* wp;
  const size_t* koff;
  const size_t* pstart; /* compacted: per-panel starts into wp/koff; NULL: k columns each */
  size_t k;
} pixel_panels;

static size_t panel_k(const pixel_panels* w, size_t q) {
  return w->pstart != NULL ? w->pstart[q + 1] - w->pstart[q] : w->k;
}
static const float* panel_w(const pixel_panels* w, size_t q) {
  return w->wp + (w->pstart != NULL ? w->pstart[q] : q * w->k) * SPARROW_PCONV_NR;
}
static const size_t* panel_koff(const pixel_panels* w, size_t q) {
  return w->pstart != NULL ? w->koff + w->pstart[q] : w->koff;
}

/* Pixel mode, full panels: how many adjacent panels from q (below end) one call takes: 4 (if
 * `most` allows) or 2 when the entry has such a kernel and they are all active, else 1 (panel q
 * is active). */
static size_t panel_span(const sparrow_direct_conv_plan* p, size_t q, size_t end, size_t most) {
  const size_t nr = SPARROW_PCONV_NR;
  if (most >= 4 && p->pfn4 != NULL && q + 3 < end && panel_active(&p->lists, q + 1, nr) &&
      panel_active(&p->lists, q + 2, nr) && panel_active(&p->lists, q + 3, nr))
    return 4;
  if (p->pfn2 != NULL && q + 1 < end && panel_active(&p->lists, q + 1, nr)) return 2;
  return 1;
}

/* One kernel call over `span` adjacent panels (wstride floats apart; unused for one). */
static inline void run_panels(const sparrow_direct_conv_plan* p, size_t span, size_t k, const float* wp, size_t wstride,
                              const size_t* koff, const float* const* px, size_t pixels, size_t chans,
                              const float* bias, float* y, size_t y_plane, float* part, int first, int last) {
  if (span == 4)
    p->pfn4(k, wp, wstride, koff, px, pixels, chans, bias, p->lo, p->hi, y, y_plane, 1, part, first, last);
  else if (span == 2)
    p->pfn2(k, wp, wstride, koff, px, pixels, chans, bias, p->lo, p->hi, y, y_plane, 1, part, first, last);
  else
    p->pfn(k, wp, koff, px, pixels, chans, bias, p->lo, p->hi, y, y_plane, 1, part, first, last);
}

/* Pixel mode, task t: pixel chunk t % pixel_chunks of weight panel range t / pixel_chunks.
 * K up to 2 * PCONV_SLICE_K: panels go in groups whose weights (about 192 KiB) stay in L2 while
 * every 6-pixel block of the chunk passes, each block's input lines reused from L1 across the
 * group's panels. Longer K (ResNet-18's 256- and 512-channel 3x3 layers: panels of 147 and 295
 * KiB, L2-bandwidth bound unsliced) runs in slices of PCONV_SLICE_K, a panel at a time. With an
 * input list, K is the active channels' (copied by prepare); compacted panels each have their
 * own K. */
static void pixel_rows(const sparrow_direct_conv_plan* p, size_t t) {
  const sparrow_direct_conv* d = p->conv;
  const size_t ranges = p->row_tasks / p->pixel_chunks, r = t / p->pixel_chunks, ch = t % p->pixel_chunks;
  const size_t p0 = sparrow_panel_range_start(d->panels, r, ranges, wide_group(p));
  const size_t p1 = sparrow_panel_range_start(d->panels, r + 1, ranges, wide_group(p));
  const size_t npix = d->s.ho * d->s.wo, blocks = image_blocks(d) * p->images;
  size_t yoff;
  const size_t b0 = blocks * ch / p->pixel_chunks, b1 = blocks * (ch + 1) / p->pixel_chunks;
  const size_t nr = SPARROW_PCONV_NR;
  const float* buf = p->workspace;
  pixel_panels w = {d->wp, d->pstart != NULL ? d->pkoff : d->koff, d->pstart, d->k};
  if (p->lists.in_channels != NULL) {
    const dense_active a = dense_active_at(d, p->workspace);
    w = (pixel_panels){a.wp, a.koff, a.pstart, p->lists.n_in_channels * d->s.kh * d->s.kw};
  }
  size_t kmax = 0, ksum = 0;
  for (size_t q = p0; q < p1; q++) {
    const size_t kq = panel_k(&w, q);
    kmax = kq > kmax ? kq : kmax;
    ksum += kq;
  }
  const float* px[SPARROW_PCONV_MR];
  /* Four or two adjacent active panels per call where the kernel entry has such forms. */
  const int wide = p->pfn2 != NULL && w.pstart == NULL;
  /* Slices past 2 * PCONV_SLICE_K columns, but four-panel calls keep their panels whole while
   * they fit in 192 KiB together (ResNet-18's 64-channel 3x3 layers: 147 KiB). Sliced layers
   * (bound by L2/L3 bandwidth, not by the FMAs) pair at most two panels, whose slices of
   * PCONV_SLICE_K / 2 columns fit L1 together: measured in ResNet-18 on the Xeon, four-panel
   * calls on 64 KiB slices made its 512-channel layers 1.93 -> 2.22 ms. */
  const int quads = wide && p->pfn4 != NULL && kmax * 4 * nr * sizeof(float) <= (192u << 10);
  if (!quads && kmax > 2 * PCONV_SLICE_K) {
    float part[PCONV_PART_BLOCKS * 2 * SPARROW_PCONV_MR * SPARROW_PCONV_NR] __attribute__((aligned(64)));
    for (size_t q = p0; q < p1;) {
      if (!panel_active(&p->lists, q, nr)) {
        q++;
        continue;
      }
      const size_t span = wide ? panel_span(p, q, p1, 2) : 1;
      const size_t r0 = q * nr, chans = d->cout - r0 < span * nr ? d->cout - r0 : span * nr;
      /* The partial sums of up to 64 blocks of up to two panels on the stack. */
      const size_t k = panel_k(&w, q), slice = PCONV_SLICE_K / span, chunk = PCONV_PART_BLOCKS;
      const float* wq = panel_w(&w, q);
      const size_t* kq = panel_koff(&w, q);
      const float* bias = p->bias != NULL ? p->bias + r0 : NULL;
      for (size_t c0 = b0; c0 < b1; c0 += chunk) {
        const size_t c1 = b1 - c0 < chunk ? b1 : c0 + chunk;
        size_t k0 = 0;
        do {
          const size_t kc = k - k0 < slice ? k - k0 : slice;
          /* The next weight slice (this call's panels', else the next panel's first) is fetched
           * into L2 a share per block while this slice's blocks run, instead of missing on the
           * first; one stream per panel. */
          const float* next = k0 + kc < k ? wq + (k0 + kc) * nr : q + span < p1 ? panel_w(&w, q + span) : NULL;
          const size_t streams = k0 + kc < k ? span : wide && q + span < p1 ? panel_span(p, q + span, p1, 2) : 1;
          const size_t lines = slice * nr * sizeof(float) / 64, nb = c1 - c0;
          const size_t per = (lines + nb - 1) / nb;
          for (size_t b = c0; b < c1; b++) {
            const size_t pixels = block_pixels(p, buf, b, px, &yoff);
            run_panels(p, span, kc, wq + k0 * nr, k * nr, kq + k0, px, pixels, chans, bias, p->y + yoff + r0 * npix,
                       npix, part + (b - c0) * span * SPARROW_PCONV_MR * nr, k0 == 0, k0 + kc == k);
            if (next != NULL)
              for (size_t l = (b - c0) * per; l < (b - c0 + 1) * per && l < lines; l++)
                for (size_t s = 0; s < streams; s++) __builtin_prefetch(next + s * k * nr + l * 16, 0, 2);
          }
          k0 += kc;
        } while (k0 < k);
      }
      q += span;
    }
    return;
  }
  const size_t panel_bytes = p1 > p0 ? ksum / (p1 - p0) * nr * sizeof(float) : 0;
  size_t group = panel_bytes == 0 ? p1 - p0 + 1 : panel_bytes >= (192u << 10) ? 1 : (192u << 10) / panel_bytes;
  if (wide && group > wide_group(p)) group -= group % wide_group(p);
  for (size_t g0 = p0; g0 < p1; g0 += group) {
    const size_t g1 = p1 - g0 < group ? p1 : g0 + group;
    for (size_t b = b0; b < b1; b++) {
      const size_t pixels = block_pixels(p, buf, b, px, &yoff);
      for (size_t q = g0; q < g1;) {
        if (!panel_active(&p->lists, q, nr)) {
          q++;
          continue;
        }
        const size_t span = wide ? panel_span(p, q, g1, 4) : 1;
        const size_t r0 = q * nr, chans = d->cout - r0 < span * nr ? d->cout - r0 : span * nr;
        run_panels(p, span, panel_k(&w, q), panel_w(&w, q), w.k * nr, panel_koff(&w, q), px, pixels, chans,
                   p->bias != NULL ? p->bias + r0 : NULL, p->y + yoff + r0 * npix, npix, NULL, 1, 1);
        q += span;
      }
    }
  }
}

void sparrow_direct_conv_rows_task(void* plan, size_t t) {
  const sparrow_direct_conv_plan* p = plan;
  if (t >= p->row_tasks) return;
  const sparrow_direct_conv* d = p->conv;
  if (d->pixel) {
    pixel_rows(p, t);
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
  const sparrow_direct_conv* d = p->conv;
  if (p->lists.out_channels == NULL) return;
  const size_t plane = d->s.ho * d->s.wo;
  size_t next = 0;
  for (size_t m = 0; m < d->cout; m++) {
    if (next < p->lists.n_out_channels && p->lists.out_channels[next] == m) {
      next++;
      continue;
    }
    memset(p->y + m * plane, 0, plane * sizeof(float));
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
  return sparrow_mul_ok(planes_bytes(d), images, &b) ? b : SIZE_MAX;
}

void sparrow_direct_conv_prepare_batch(sparrow_direct_conv_plan* p, const sparrow_direct_conv* d, size_t images,
                                       const float* x, const float* bias, float lo, float hi, float* y, void* workspace,
                                       int threads, size_t ukernel) {
  const size_t nt = threads < 1 ? 1 : (size_t)threads;
  sparrow_direct_conv_prepare(p, d, NULL, x, bias, lo, hi, y, workspace, threads, ukernel);
  if (!d->pixel) return;
  p->images = images;
  p->pad_tasks = nt < p->n_in * images ? nt : p->n_in * images;
  split_pixel_chunks(p, nt);
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
