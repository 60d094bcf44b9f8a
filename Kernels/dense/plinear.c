/* A linear layer on the pixel-major kernel (sparrow_kernels.h, sparrow_plinear_*): token rows
 * are the broadcast side, 16 output features the vector side, so A (rows x K) and Y (rows x out)
 * are read and written row-major as ONNX holds them, with no transpose. The weight is packed in
 * panels of SPARROW_PCONV_NR outputs, K-major inside a panel, each panel keeping only the
 * columns with a nonzero in one of its rows (all of them for a dense weight): a panel's koff
 * lists its kept columns, which the kernel reads as A[r][koff[k]]. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../common/common.h"
#include "../common/error.h"
#include "../conv/dconv/dconv.h"
#include "../dispatch/dispatch.h"

struct sparrow_plinear {
  size_t out, k, panels;
  float* wp;      /* kept columns of every panel, NR floats each */
  size_t* koff;   /* their column indices */
  size_t* pstart; /* panels + 1: panel q holds entries [pstart[q], pstart[q + 1]) */
  sparrow_pconv_ukernel_fn pfn;
};

/* 1 when column j holds a nonzero in one of rows r0 ..< r1 of W (out x k). */
static int column_kept(const float* w, size_t k, size_t r0, size_t r1, size_t j) {
  for (size_t r = r0; r < r1; r++)
    if (w[r * k + j] != 0.0f) return 1;
  return 0;
}

sparrow_status sparrow_plinear_create(size_t out, size_t k, const float* w, sparrow_plinear** linear) {
  if (linear == NULL) return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "linear: no output handle");
  *linear = NULL;
  const size_t nr = SPARROW_PCONV_NR;
  size_t cells;
  if (out == 0 || k == 0 || w == NULL || !sparrow_mul_ok(sparrow_div_up(out, nr) * nr, k, &cells) ||
      cells > SIZE_MAX / sizeof(float))
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "linear: %zu x %zu weight", out, k);
  sparrow_plinear* l = calloc(1, sizeof *l);
  if (l == NULL) return sparrow_fail(SPARROW_ERR_OUT_OF_MEMORY, "linear");
  l->out = out, l->k = k, l->panels = sparrow_div_up(out, nr);
  size_t kept = 0;
  for (size_t q = 0; q < l->panels; q++) {
    const size_t r1 = (q + 1) * nr < out ? (q + 1) * nr : out;
    for (size_t j = 0; j < k; j++) kept += column_kept(w, k, q * nr, r1, j);
  }
  l->wp = aligned_alloc(64, SPARROW_ALIGN64((kept > 0 ? kept : 1) * nr * sizeof(float)));
  l->koff = malloc((kept > 0 ? kept : 1) * sizeof(size_t));
  l->pstart = malloc((l->panels + 1) * sizeof(size_t));
  if (l->wp == NULL || l->koff == NULL || l->pstart == NULL) {
    sparrow_plinear_free(l);
    return sparrow_fail(SPARROW_ERR_OUT_OF_MEMORY, "linear: %zu x %zu weight", out, k);
  }
  size_t t = 0;
  for (size_t q = 0; q < l->panels; q++) {
    const size_t r0 = q * nr, r1 = r0 + nr < out ? r0 + nr : out;
    l->pstart[q] = t;
    for (size_t j = 0; j < k; j++) {
      if (!column_kept(w, k, r0, r1, j)) continue;
      for (size_t i = 0; i < nr; i++) l->wp[t * nr + i] = r0 + i < r1 ? w[(r0 + i) * k + j] : 0.0f;
      l->koff[t++] = j;
    }
  }
  l->pstart[l->panels] = t;
  l->pfn = sparrow_pconv_select(SPARROW_DWCONV_AUTO);
  *linear = l;
  return SPARROW_OK;
}

void sparrow_plinear_free(sparrow_plinear* l) {
  if (l == NULL) return;
  free(l->wp);
  free(l->koff);
  free(l->pstart);
  free(l);
}

size_t sparrow_plinear_columns(const sparrow_plinear* l) { return l->pstart[l->panels]; }

/* Panels per group that tasks keep together (the widest multi-panel call). */
static size_t wide_group(const sparrow_plinear_plan* p) { return p->pfn4 != NULL ? 4 : p->pfn2 != NULL ? 2 : 1; }

/* 1 when panel q keeps every column (a dense weight's panels all do). */
static int panel_full(const sparrow_plinear* l, size_t q) { return l->pstart[q + 1] - l->pstart[q] == l->k; }

/* How many adjacent panels from q (below end) one call takes: 4 (if `most` allows) or 2 where the
 * entry has such a kernel and they all keep every column (the same koff, each panel's weights right after the
 * previous one's), else 1. */
static size_t panel_span(const sparrow_plinear_plan* p, size_t q, size_t end, size_t most) {
  const sparrow_plinear* l = p->linear;
  if (!panel_full(l, q)) return 1;
  if (most >= 4 && p->pfn4 != NULL && q + 3 < end && panel_full(l, q + 1) && panel_full(l, q + 2) &&
      panel_full(l, q + 3))
    return 4;
  if (p->pfn2 != NULL && q + 1 < end && panel_full(l, q + 1)) return 2;
  return 1;
}

sparrow_status sparrow_plinear_prepare(sparrow_plinear_plan* p, const sparrow_plinear* l, const float* a, size_t rows,
                                       size_t lda, const float* bias, float lo, float hi, float* y, size_t ldy,
                                       int threads, size_t ukernel) {
  if (p == NULL || l == NULL || (rows > 0 && (a == NULL || y == NULL)) || lda < l->k || ldy < l->out)
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "linear: bad operands (lda %zu for K %zu, ldy %zu for %zu)", lda,
                        l != NULL ? l->k : 0, ldy, l != NULL ? l->out : 0);
  if (!(lo <= hi)) return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "linear: clamp range [%g, %g] is empty", lo, hi);
  if (ukernel != SPARROW_DWCONV_AUTO &&
      (ukernel >= sparrow_pconv_ukernel_count() || !sparrow_pconv_ukernel_runnable(ukernel)))
    return sparrow_fail(SPARROW_ERR_UNSUPPORTED, "linear: pixel-major microkernel %zu cannot run on this CPU", ukernel);
  const size_t nt = threads < 1 ? 1 : (size_t)threads, blocks = sparrow_div_up(rows, SPARROW_PCONV_MR);
  *p = (sparrow_plinear_plan){.linear = l,
                              .a = a,
                              .rows = rows,
                              .lda = lda,
                              .bias = bias,
                              .lo = lo,
                              .hi = hi,
                              .y = y,
                              .ldy = ldy,
                              .row_chunks = 1};
  p->pfn = ukernel == SPARROW_DWCONV_AUTO ? l->pfn : sparrow_pconv_select(ukernel);
  p->pfn2 = sparrow_pconv_select_wide(ukernel, 2);
  p->pfn4 = sparrow_pconv_select_wide(ukernel, 4);
  /* Ranges of panels (of groups of panels with multi-panel kernels); with too few to share, row
   * chunks as well. */
  const size_t units = sparrow_div_up(l->panels, wide_group(p));
  p->tasks = nt == 1 ? 1 : nt * 4 < units ? nt * 4 : units;
  if (nt > 1 && units < nt * 2) p->row_chunks = sparrow_div_up(nt * 2, units);
  if (p->row_chunks > blocks) p->row_chunks = blocks > 0 ? blocks : 1;
  p->tasks *= p->row_chunks;
  if (rows == 0) p->tasks = 0;
  return SPARROW_OK;
}

/* K slices: past 2 * SLICE_K columns a panel runs a slice at a time (16 KiB of weight in L1)
 * over up to PART_BLOCKS row blocks, their partial sums on the stack. */
#define SLICE_K 256
#define PART_BLOCKS 32

/* Task t: row chunk t % row_chunks of panel range t / row_chunks. Short K: panels in groups of
 * about 192 KiB of weight (L2) while each 6-row block of A passes (its rows reused from L1
 * across the group). Long K: a panel at a time, in slices. */
void sparrow_plinear_task(void* plan, size_t t) {
  const sparrow_plinear_plan* p = plan;
  if (t >= p->tasks) return;
  const sparrow_plinear* l = p->linear;
  const size_t nr = SPARROW_PCONV_NR, mr = SPARROW_PCONV_MR;
  const size_t ranges = p->tasks / p->row_chunks, r = t / p->row_chunks, ch = t % p->row_chunks;
  const size_t q0 = sparrow_panel_range_start(l->panels, r, ranges, wide_group(p));
  const size_t q1 = sparrow_panel_range_start(l->panels, r + 1, ranges, wide_group(p));
  const size_t blocks = sparrow_div_up(p->rows, mr);
  const size_t b0 = blocks * ch / p->row_chunks, b1 = blocks * (ch + 1) / p->row_chunks;
  size_t kmax = 0, ksum = 0;
  for (size_t q = q0; q < q1; q++) {
    const size_t kq = l->pstart[q + 1] - l->pstart[q];
    kmax = kq > kmax ? kq : kmax;
    ksum += kq;
  }
  const float* px[SPARROW_PCONV_MR];
#define BLOCK_ROWS(b)                                                          \
  const size_t row0 = (b) * mr, n = p->rows - row0 < mr ? p->rows - row0 : mr; \
  for (size_t i = 0; i < mr; i++) px[i] = p->a + (row0 + (i < n ? i : n - 1)) * p->lda;
  if (kmax > 2 * SLICE_K) {
    float part[PART_BLOCKS * 2 * SPARROW_PCONV_MR * SPARROW_PCONV_NR] __attribute__((aligned(64)));
    for (size_t q = q0; q < q1;) {
      /* At most two panels per call (as direct.c's sliced convolutions), whose slices fit L1
       * together (16 KiB); their partial sums of PART_BLOCKS blocks on the stack. */
      const size_t span = panel_span(p, q, q1, 2);
      const size_t c0q = q * nr, chans = l->out - c0q < span * nr ? l->out - c0q : span * nr;
      const size_t k = l->pstart[q + 1] - l->pstart[q], slice = SLICE_K / span, chunk = PART_BLOCKS;
      const float* wq = l->wp + l->pstart[q] * nr;
      const size_t* kq = l->koff + l->pstart[q];
      const float* bias = p->bias != NULL ? p->bias + c0q : NULL;
      for (size_t c0 = b0; c0 < b1; c0 += chunk) {
        const size_t c1 = b1 - c0 < chunk ? b1 : c0 + chunk;
        size_t k0 = 0;
        do {
          const size_t kc = k - k0 < slice ? k - k0 : slice;
          for (size_t b = c0; b < c1; b++) {
            BLOCK_ROWS(b)
            sparrow_pconv_call(span, p->pfn, p->pfn2, p->pfn4, kc, wq + k0 * nr, k * nr, kq + k0, px, n, chans, bias,
                               p->lo, p->hi, p->y + row0 * p->ldy + c0q, 1, p->ldy, part + (b - c0) * span * mr * nr,
                               k0 == 0, k0 + kc == k);
          }
          k0 += kc;
        } while (k0 < k);
      }
      q += span;
    }
    return;
  }
  const size_t panel_bytes = q1 > q0 ? ksum / (q1 - q0) * nr * sizeof(float) : 0;
  size_t group = panel_bytes == 0 ? q1 - q0 + 1 : panel_bytes >= (192u << 10) ? 1 : (192u << 10) / panel_bytes;
  if (group > wide_group(p)) group -= group % wide_group(p);
  for (size_t g0 = q0; g0 < q1; g0 += group) {
    const size_t g1 = q1 - g0 < group ? q1 : g0 + group;
    for (size_t b = b0; b < b1; b++) {
      BLOCK_ROWS(b)
      for (size_t q = g0; q < g1;) {
        const size_t span = panel_span(p, q, g1, 4);
        const size_t c0q = q * nr, chans = l->out - c0q < span * nr ? l->out - c0q : span * nr;
        sparrow_pconv_call(span, p->pfn, p->pfn2, p->pfn4, l->pstart[q + 1] - l->pstart[q], l->wp + l->pstart[q] * nr,
                           l->k * nr, l->koff + l->pstart[q], px, n, chans, p->bias != NULL ? p->bias + c0q : NULL,
                           p->lo, p->hi, p->y + row0 * p->ldy + c0q, 1, p->ldy, NULL, 1, 1);
        q += span;
      }
    }
  }
#undef BLOCK_ROWS
}

size_t sparrow_panel_gemm_workspace_bytes(size_t n, size_t k) {
  return SPARROW_ALIGN64(sparrow_div_up(n, SPARROW_PCONV_NR) * SPARROW_PCONV_NR * k * sizeof(float)) +
         SPARROW_ALIGN64(k * sizeof(size_t));
}

sparrow_status sparrow_panel_gemm(size_t m, size_t n, size_t k, const float* a, size_t lda, const float* b, size_t ldb,
                                  int trans_b, float* c, size_t ldc, void* workspace, size_t workspace_bytes) {
  const size_t nr = SPARROW_PCONV_NR, mr = SPARROW_PCONV_MR, panels = sparrow_div_up(n, nr);
  if (m == 0 || n == 0) return SPARROW_OK;
  if (a == NULL || b == NULL || c == NULL || workspace == NULL || ((uintptr_t)workspace & 63) != 0 ||
      workspace_bytes < sparrow_panel_gemm_workspace_bytes(n, k) || lda < k || ldc < n || ldb < (trans_b ? k : n))
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "panel gemm: bad operands or workspace for %zu x %zu x %zu", m, n,
                        k);
  float* wp = workspace;
  size_t* koff = (size_t*)((char*)workspace + SPARROW_ALIGN64(panels * nr * k * sizeof(float)));
  for (size_t j = 0; j < k; j++) koff[j] = j;
  /* B' (k x n) in panels of 16 columns, K-major inside a panel; columns past n hold 0. */
  for (size_t q = 0; q < panels; q++) {
    float* w = wp + q * k * nr;
    const size_t c0 = q * nr, cols = n - c0 < nr ? n - c0 : nr;
    /* Transposed B (attention's K): the panel's rows of B transposed by the SIMD transpose. */
    if (trans_b) sparrow_transpose_f32(cols, k, b + c0 * ldb, ldb, w, nr);
    for (size_t j = 0; j < k; j++) {
      if (!trans_b) memcpy(w + j * nr, b + j * ldb + c0, cols * sizeof(float));
      for (size_t i = cols; i < nr; i++) w[j * nr + i] = 0.0f;
    }
  }
  const sparrow_pconv_ukernel_fn fn = sparrow_pconv_select(SPARROW_DWCONV_AUTO);
  const sparrow_pconv_wide_fn fn2 = sparrow_pconv_select_wide(SPARROW_DWCONV_AUTO, 2);
  const sparrow_pconv_wide_fn fn4 = sparrow_pconv_select_wide(SPARROW_DWCONV_AUTO, 4);
  const float* px[SPARROW_PCONV_MR];
  for (size_t row0 = 0; row0 < m; row0 += mr) {
    const size_t rows = m - row0 < mr ? m - row0 : mr;
    for (size_t i = 0; i < mr; i++) px[i] = a + (row0 + (i < rows ? i : rows - 1)) * lda;
    for (size_t q = 0; q < panels;) {
      const size_t span = fn4 != NULL && q + 3 < panels ? 4 : fn2 != NULL && q + 1 < panels ? 2 : 1;
      const size_t c0 = q * nr, cols = n - c0 < span * nr ? n - c0 : span * nr;
      sparrow_pconv_call(span, fn, fn2, fn4, k, wp + q * k * nr, k * nr, koff, px, rows, cols, NULL, -INFINITY,
                         INFINITY, c + row0 * ldc + c0, 1, ldc, NULL, 1, 1);
      q += span;
    }
  }
  return SPARROW_OK;
}
