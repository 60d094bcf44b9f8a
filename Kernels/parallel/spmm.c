/* The SpMM driver: validates a call, splits it into tiles of row units x columns, and runs
 * the matrix's bound kernel per tile (a whole-call kernel, OpenBLAS, runs the call in prepare).
 * Tiles run on the caller's threads (Swift's runner) or on sparrow_parallel_for. */
#include <string.h>

#include "../common/error.h"
#include "../pack/formats.h"
#include "../dispatch/dispatch.h"

#define ALIGN64 SPARROW_ALIGN64

size_t sparrow_spmm_workspace_bytes(const sparrow_matrix* w, size_t n, int has_out, int has_in) {
  return w->kernel != NULL ? w->kernel->workspace_bytes(w, n, has_out, has_in) : 0;
}

size_t sparrow_spmm_tiles_workspace_bytes(const sparrow_matrix* w, size_t n, int has_out, int has_in) {
  (void)n;
  size_t bytes = 0;
  if (has_in) bytes += ALIGN64(w->k) + (w->format == SPARROW_FORMAT_GEMM ? 0 : sparrow_compact_bytes(w));
  if (has_out && w->format == SPARROW_FORMAT_BSR) bytes += ALIGN64(w->u.bsr.mb * sizeof(uint32_t));
  /* Panels of any MR are at most M: the size holds when a forced kernel repacks. */
  if (has_out && w->format == SPARROW_FORMAT_GEMM) bytes += ALIGN64(w->m * sizeof(uint32_t));
  return bytes;
}

sparrow_status sparrow_spmm_check(const sparrow_matrix* w, const sparrow_spmm_call* c) {
  sparrow_clear_error();
  if (w == NULL || c == NULL || c->x == NULL || c->y == NULL)
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "NULL matrix, call, x or y");
  if (w->kernel == NULL) return sparrow_fail(SPARROW_ERR_UNSUPPORTED, "no kernel for this matrix");
  if (c->n == 0 || c->n > SPARROW_MAX_DIM)
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "n = %zu is outside 1...%zu", c->n, SPARROW_MAX_DIM);
  if (c->x_window != NULL) {
    const sparrow_dwconv_shape* s = c->x_window;
    const sparrow_status st = sparrow_dwconv_check(s);
    if (st != SPARROW_OK) return st;
    if (!sparrow_spmm_reads_window(w))
      return sparrow_fail(SPARROW_ERR_UNSUPPORTED,
                          "the kernel for this matrix (%s) needs X unfolded (im2col), not a window",
                          sparrow_kernel_name(w));
    if (c->n != s->ho * s->wo || w->k != s->channels * s->kh * s->kw)
      return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT,
                          "window %zux%zux%zu, kernel %zux%zu, output %zux%zu does not match K = %zu, n = %zu",
                          s->channels, s->h, s->w, s->kh, s->kw, s->ho, s->wo, w->k, c->n);
  } else if (c->x_stride < c->n * sizeof(float) || c->x_stride % sizeof(float) != 0)
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "x_stride %zu bytes: need a multiple of 4 and >= %zu",
                        c->x_stride, c->n * sizeof(float));
  if (c->y_stride < c->n * sizeof(float) || c->y_stride % sizeof(float) != 0)
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "y_stride %zu bytes: need a multiple of 4 and >= %zu",
                        c->y_stride, c->n * sizeof(float));
  if (!(c->clamp_lo <= c->clamp_hi))
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "clamp range [%g, %g] is empty", c->clamp_lo, c->clamp_hi);
  if (c->out_rows != NULL) {
    if (c->n_out_rows > w->m)
      return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "%zu active rows for %zu rows", c->n_out_rows, w->m);
    for (size_t i = 0; i < c->n_out_rows; i++) {
      if (c->out_rows[i] >= w->m)
        return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "active row %u is outside 0..<%zu", c->out_rows[i], w->m);
      if (i > 0 && c->out_rows[i] <= c->out_rows[i - 1])
        return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "active rows must be strictly increasing");
    }
  }
  if (c->in_channels != NULL) {
    const size_t kpc = c->k_per_channel ? c->k_per_channel : 1;
    if (w->k % kpc != 0)
      return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "K = %zu is not a multiple of k_per_channel %zu", w->k, kpc);
    const size_t channels = w->k / kpc;
    for (size_t i = 0; i < c->n_in_channels; i++) {
      if (c->in_channels[i] >= channels)
        return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "active input channel %u is outside 0..<%zu",
                            c->in_channels[i], channels);
      if (i > 0 && c->in_channels[i] <= c->in_channels[i - 1])
        return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "active input channels must be strictly increasing");
    }
  }
  const size_t need = sparrow_spmm_workspace_bytes(w, c->n, c->out_rows != NULL, c->in_channels != NULL);
  if (need > 0 && (c->workspace == NULL || c->workspace_bytes < need || ((uintptr_t)c->workspace & 63) != 0))
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "workspace: need %zu bytes, 64-byte aligned (got %zu)", need,
                        c->workspace_bytes);
  return SPARROW_OK;
}

#define div_up sparrow_div_up

void sparrow_spmm_prepare(sparrow_spmm_plan* p, const sparrow_matrix* w, const sparrow_spmm_call* c, int threads) {
  memset(p, 0, sizeof *p);
  p->w = w;
  p->call = c;
  p->threads = threads < 1 ? 1 : threads;
  p->kernel = w->kernel;
  if (w->kernel->whole != NULL) {
    w->kernel->whole(w, c, p->threads);
    return;
  }
  uint8_t* ws = c->workspace;
  /* Every channel listed is the same as no list. */
  const size_t kpc = c->k_per_channel ? c->k_per_channel : 1;
  const int has_in = c->in_channels != NULL && c->n_in_channels < w->k / kpc;
  uint8_t* mask = NULL;
  if (has_in) {
    mask = ws;
    memset(mask, 0, w->k);
    for (size_t i = 0; i < c->n_in_channels; i++) memset(mask + (size_t)c->in_channels[i] * kpc, 1, kpc);
    p->k_mask = mask;
    ws += ALIGN64(w->k);
  }
  /* Row units: rows (CSR, N:M), block rows (BSR) or panels (GEMM). */
  const int blocked = w->format == SPARROW_FORMAT_BSR || w->format == SPARROW_FORMAT_GEMM;
  const size_t unit_rows = w->format == SPARROW_FORMAT_BSR    ? w->u.bsr.r
                           : w->format == SPARROW_FORMAT_GEMM ? w->u.gemm.mr
                                                              : 1;
  size_t units = sparrow_div_up(w->m, unit_rows);
  if (c->out_rows != NULL) {
    if (blocked) {
      /* Block rows (panels) that hold at least one active row. */
      uint32_t* list = (uint32_t*)ws;
      ws += ALIGN64(units * sizeof(uint32_t));
      const size_t r = unit_rows;
      size_t cnt = 0;
      for (size_t i = 0; i < c->n_out_rows; i++) {
        const uint32_t br = (uint32_t)(c->out_rows[i] / r);
        if (cnt == 0 || list[cnt - 1] != br) list[cnt++] = br;
      }
      p->unit_list = list;
      units = cnt;
    } else {
      p->unit_list = c->out_rows;
      units = c->n_out_rows;
    }
  }
  /* Inactive input channels: the kernels run on a copy holding only the active part (CSR and
   * N:M: active nonzeros, as CSR; BSR: blocks touching an active column). The copy costs about
   * as much per nonzero as the multiply of ~40 columns (measured, AVX2 1x64 CSR), so where the
   * kernel can run the whole matrix under the mask instead (zero-filled X rows, full cost) and
   * the skipped fraction of the columns (1 - R) * n is below that, it does. */
  if (has_in) {
    const double skipped = 1.0 - (double)c->n_in_channels * (double)kpc / (double)w->k;
    /* GEMM kernels always run under the mask (a dense copy would cost a full pass over W). */
    if (w->format != SPARROW_FORMAT_GEMM &&
        (w->format == SPARROW_FORMAT_BSR || !w->kernel->honours_mask || skipped * (double)c->n >= 40.0)) {
      p->w = sparrow_compact(w, mask, p->unit_list, units, ws);
      p->kernel = p->w->kernel;
    }
  }
  p->row_units = units;
  if (units == 0) return;
  /* Tiles: every tile copies its own X panels (64 columns each) and pays each row's fixed costs
   * per panel, so more tiles cost more work. About 4 per thread where there are panels enough
   * to balance dynamically; else one per thread. Columns are split first, in equal widths (a
   * multiple of 8), as each tile reuses its X panels across its rows; rows only when the
   * columns run out (small n: every row tile then copies the same panels). Measured on
   * ResNet-18 90% (2 threads): 32-column tiles each split again by rows made the n = 49 and
   * n = 196 layers no faster than on 1 thread. */
  const size_t panels = div_up(c->n, 64);
  const size_t want = p->threads == 1                    ? 1
                      : panels >= (size_t)p->threads * 4 ? (size_t)p->threads * 4
                                                         : (size_t)p->threads;
  size_t col_tiles = panels < want ? panels : want;
  /* The AVX-512 CSR and N:M kernels run up to 128 columns per pass. Where n has fewer such
   * panels than threads (a transformer's 128 tokens on 2 threads), the rows split instead: two
   * 64-column halves would each stream all of W with half the FMAs per weight loaded. Measured
   * on MiniLM-L6 2:4 (Zen 5, 2 threads): the 384x128x1536 layer 0.43 ms on 64-column halves. */
  const size_t wide =
      p->kernel->desc.isa == SPARROW_ISA_AVX512 && p->kernel->desc.block_rows <= 1 &&
              (p->kernel->desc.format == SPARROW_FORMAT_CSR || p->kernel->desc.format == SPARROW_FORMAT_NM)
          ? div_up(c->n, 128)
          : SIZE_MAX;
  if (wide < (size_t)p->threads && wide < col_tiles) col_tiles = wide;
  /* GEMM: whole 16-column register blocks per tile (AVX2's 6x16), else a multiple of 8. */
  const size_t col_align = w->format == SPARROW_FORMAT_GEMM ? 16 : 8;
  const size_t tile_cols = div_up(div_up(c->n, col_tiles), col_align) * col_align;
  col_tiles = div_up(c->n, tile_cols);
  size_t row_tiles = div_up(want, col_tiles);
  if (row_tiles > units) row_tiles = units;
  p->tile_units = div_up(units, row_tiles);
  /* Shared-pattern N:M kernels compute blocks of block_rows rows: tiles of whole blocks. */
  if (p->kernel->desc.format == SPARROW_FORMAT_NM && p->kernel->desc.block_rows > 1 && p->unit_list == NULL)
    p->tile_units = div_up(p->tile_units, p->kernel->desc.block_rows) * p->kernel->desc.block_rows;
  p->tile_cols = tile_cols;
  p->col_tiles = col_tiles;
  p->tiles = div_up(units, p->tile_units) * col_tiles;
}

void sparrow_spmm_task(void* plan, size_t t) {
  const sparrow_spmm_plan* p = plan;
  if (t >= p->tiles) return;
  const sparrow_spmm_call* c = p->call;
  const size_t ct = t % p->col_tiles, rt = t / p->col_tiles;
  const size_t n0 = ct * p->tile_cols;
  const size_t n1 = n0 + p->tile_cols < c->n ? n0 + p->tile_cols : c->n;
  const size_t u0 = rt * p->tile_units;
  const size_t u1 = u0 + p->tile_units < p->row_units ? u0 + p->tile_units : p->row_units;
  sparrow_ukernel_args a = {.x = c->x_window != NULL ? c->x : c->x + n0,
                            .x_stride = c->x_stride,
                            .y = c->y + n0,
                            .y_stride = c->y_stride,
                            .n = n1 - n0,
                            .bias = c->bias,
                            .lo = c->clamp_lo,
                            .hi = c->clamp_hi,
                            .k_mask = p->k_mask,
                            .win = c->x_window,
                            .col0 = n0};
  p->kernel->tile(p->w, p->unit_list, u0, u1, &a);
}

void sparrow_spmm_finish(const sparrow_spmm_plan* p) {
  const sparrow_spmm_call* c = p->call;
  if (p->kernel->whole != NULL || c->out_rows == NULL) return;
  /* Rows outside the active list hold exact zeros (BSR kernels also wrote the inactive rows
   * of active blocks). */
  size_t next = 0;
  for (size_t r = 0; r < p->w->m; r++) {
    if (next < c->n_out_rows && c->out_rows[next] == r) {
      next++;
      continue;
    }
    memset((char*)c->y + r * c->y_stride, 0, c->n * sizeof(float));
  }
}

sparrow_status sparrow_spmm(const sparrow_matrix* w, const sparrow_spmm_call* c, int threads) {
  sparrow_status st = sparrow_spmm_check(w, c);
  if (st != SPARROW_OK) return st;
  sparrow_spmm_plan p;
  sparrow_spmm_prepare(&p, w, c, threads);
  sparrow_parallel_for(p.tiles, p.threads, sparrow_spmm_task, &p);
  sparrow_spmm_finish(&p);
  return SPARROW_OK;
}
