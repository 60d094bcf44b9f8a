/* DENSE and CHANNEL formats: OpenBLAS sgemm on the compact matrix. Row/column maps and the
 * active-channel lists become gathers into the workspace; the epilogue (bias, clamp, zeros
 * for gated rows, clamp(bias) for rows whose weights are all zero) is one pass over Y. */
#include <cblas.h>
#include <stdatomic.h>
#include <string.h>

#include "../pack/formats.h"
#include "../dispatch/dispatch.h"

#define ALIGN64 SPARROW_ALIGN64

static atomic_int blas_threads = 0;

void sparrow_blas_set_threads(int threads) {
  if (threads < 1) threads = 1;
  if (atomic_exchange(&blas_threads, threads) != threads) openblas_set_num_threads(threads);
}

const char* sparrow_blas_core(void) { return openblas_get_corename(); }

size_t sparrow_dense_workspace_bytes(const sparrow_matrix* w, size_t n, int has_out, int has_in) {
  const sparrow_dense* d = &w->u.dense;
  const size_t kr = d->kept_rows, kc = d->kept_cols;
  size_t bytes = 0;
  if (has_in) bytes += ALIGN64(w->k);                                     /* K mask */
  if (has_out || has_in) bytes += ALIGN64((kr + kc) * sizeof(uint32_t));  /* selections */
  if (has_out || has_in) bytes += ALIGN64(kr * kc * sizeof(float));       /* gathered W */
  if (has_out || has_in) bytes += ALIGN64(2 * kc * sizeof(uint32_t));     /* column runs */
  if (has_in || d->col_map != NULL) bytes += ALIGN64(kc * n * sizeof(float));   /* gathered X */
  if (has_out || d->row_map != NULL) bytes += ALIGN64(kr * n * sizeof(float));  /* Y rows */
  return bytes;
}

/* One slice of C = A·B: columns [s0, s0 + len) when by_cols, else rows. */
typedef struct {
  size_t R, n, K, lda, ldb, ldc, chunk, total;
  const float *a, *b;
  float* c;
  int by_cols;
} gemm_slices;

static void gemm_slice(void* ctx, size_t t) {
  const gemm_slices* g = ctx;
  const size_t s0 = t * g->chunk, len = g->total - s0 < g->chunk ? g->total - s0 : g->chunk;
  if (g->by_cols)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)g->R, (int)len, (int)g->K, 1.0f, g->a, (int)g->lda,
                g->b + s0, (int)g->ldb, 0.0f, g->c + s0, (int)g->ldc);
  else
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)len, (int)g->n, (int)g->K, 1.0f, g->a + s0 * g->lda,
                (int)g->lda, g->b, (int)g->ldb, 0.0f, g->c + s0 * g->ldc, (int)g->ldc);
}

/* C = A·B (row-major, R x n, inner C). With more than one thread, the product is split over
 * the library's threads (sparrow_parallel_for: Sparrow's pool, or OpenMP; columns when every
 * thread gets 64 or more, else rows), each calling OpenBLAS single-threaded: one thread pool for
 * every kernel, instead of OpenBLAS's pthreads and ours both spinning after their work. Measured
 * on 2 cores against OpenBLAS's own threads (OpenMP build, interleaved): ResNet-18 90% 16.0 vs
 * 16.3 ms, dense 29.7 vs 30.0 ms, MobileNetV2 90% 7.2 vs 7.7 ms: within noise, kept for the
 * single pool. */
static void gemm(size_t R, size_t n, size_t K, const float* a, size_t lda, const float* b, size_t ldb, float* c,
                 size_t ldc, int threads) {
  if (threads > 1) {
    sparrow_blas_set_threads(1);
    gemm_slices g = {.R = R, .n = n, .K = K, .lda = lda, .ldb = ldb, .ldc = ldc, .a = a, .b = b, .c = c};
    g.by_cols = n >= (size_t)threads * 64;
    g.total = g.by_cols ? n : R;
    const size_t unit = g.by_cols ? 16 : 4;
    g.chunk = sparrow_div_up(sparrow_div_up(g.total, (size_t)threads), unit) * unit;
    sparrow_parallel_for(sparrow_div_up(g.total, g.chunk), threads, gemm_slice, &g);
    return;
  }
  sparrow_blas_set_threads(threads);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)R, (int)n, (int)K, 1.0f, a, (int)lda, b, (int)ldb, 0.0f,
              c, (int)ldc);
}

static void epilogue_row(float* y, const float* src, size_t n, float bias, float lo, float hi) {
  if (src == NULL) {
    const float v = sparrow_clampf(bias, lo, hi);
    for (size_t j = 0; j < n; j++) y[j] = v;
  } else {
    for (size_t j = 0; j < n; j++) y[j] = sparrow_clampf(src[j] + bias, lo, hi);
  }
}

void sparrow_dense_run(const sparrow_matrix* w, const sparrow_spmm_call* c, int threads) {
  const sparrow_dense* d = &w->u.dense;
  const size_t kr = d->kept_rows, kc = d->kept_cols, n = c->n, K = w->k;
  const size_t kpc = c->k_per_channel ? c->k_per_channel : 1;
  /* Every channel listed is the same as no list. */
  const int has_out = c->out_rows != NULL && c->n_out_rows < w->m, has_in = c->in_channels != NULL && c->n_in_channels < K / kpc;
  char* ws = c->workspace;

  /* Column selection: compact columns whose original column is active. */
  const uint8_t* mask = NULL;
  if (has_in) {
    uint8_t* m = (uint8_t*)ws;
    memset(m, 0, K);
    for (size_t i = 0; i < c->n_in_channels; i++) memset(m + (size_t)c->in_channels[i] * kpc, 1, kpc);
    mask = m;
    ws += ALIGN64(K);
  }
  uint32_t *sel_rows = NULL, *sel_cols = NULL;
  size_t R = kr, C = kc;
  if (has_out || has_in) {
    sel_rows = (uint32_t*)ws;
    sel_cols = sel_rows + kr;
    ws += ALIGN64((kr + kc) * sizeof(uint32_t));
    R = 0;
    for (size_t i = 0, next = 0; i < kr; i++) {
      const size_t orig = d->row_map ? d->row_map[i] : i;
      if (has_out) {
        while (next < c->n_out_rows && c->out_rows[next] < orig) next++;
        if (next == c->n_out_rows || c->out_rows[next] != orig) continue;
      }
      sel_rows[R++] = (uint32_t)i;
    }
    C = 0;
    for (size_t j = 0; j < kc; j++) {
      const size_t orig = d->col_map ? d->col_map[j] : j;
      if (mask == NULL || mask[orig]) sel_cols[C++] = (uint32_t)j;
    }
  }
  /* W: the compact matrix itself, or the selected rows x columns of it. */
  const float* wa = d->w;
  size_t lda = kc;
  if (has_out || has_in) {
    float* g = (float*)ws;
    ws += ALIGN64(kr * kc * sizeof(float));
    /* Selected columns come in runs (a channel's kh*kw columns, or every column): copy runs. */
    uint32_t* run_src = (uint32_t*)ws;
    uint32_t* run_len = run_src + kc;
    ws += ALIGN64(2 * kc * sizeof(uint32_t));
    size_t runs = 0;
    for (size_t j = 0; j < C; j++) {
      if (j == 0 || sel_cols[j] != sel_cols[j - 1] + 1) run_src[runs] = sel_cols[j], run_len[runs++] = 0;
      run_len[runs - 1]++;
    }
    for (size_t i = 0; i < R; i++) {
      const float* src = d->w + (size_t)sel_rows[i] * kc;
      float* dst = g + i * C;
      for (size_t q = 0; q < runs; q++) {
        const size_t len = run_len[q];
        const float* sp = src + run_src[q];
        for (size_t t = 0; t < len; t++) dst[t] = sp[t];
        dst += len;
      }
    }
    wa = g;
    lda = C ? C : 1;
  }
  /* X: the caller's rows, or the rows of the kept (and active) columns gathered. */
  const float* xa = c->x;
  size_t ldx = c->x_stride / sizeof(float);
  if (has_in || d->col_map != NULL) {
    float* g = (float*)ws;
    ws += ALIGN64(kc * n * sizeof(float));
    for (size_t j = 0; j < C; j++) {
      const size_t cj = sel_cols ? sel_cols[j] : j;
      const size_t orig = d->col_map ? d->col_map[cj] : cj;
      memcpy(g + j * n, (const char*)c->x + orig * c->x_stride, n * sizeof(float));
    }
    xa = g;
    ldx = n;
  }
  /* Y: straight into the caller's rows when every row is computed in order, else compact. */
  const int direct = !has_out && d->row_map == NULL;
  float* ya = direct ? c->y : (float*)ws;
  const size_t ldy = direct ? c->y_stride / sizeof(float) : n;

  if (R > 0) {
    if (C > 0) {
      gemm(R, n, C, wa, lda, xa, ldx, ya, ldy, threads);
    } else {
      for (size_t i = 0; i < R; i++) memset(ya + i * ldy, 0, n * sizeof(float));
    }
  }
  /* Epilogue over every original row. */
  for (size_t r = 0, i = 0, next = 0; r < w->m; r++) {
    float* yr = (float*)((char*)c->y + r * c->y_stride);
    const float bias = c->bias ? c->bias[r] : 0.0f;
    if (direct) {
      epilogue_row(yr, yr, n, bias, c->clamp_lo, c->clamp_hi);
      continue;
    }
    if (has_out) {
      while (next < c->n_out_rows && c->out_rows[next] < r) next++;
      if (next == c->n_out_rows || c->out_rows[next] != r) {
        memset(yr, 0, n * sizeof(float));
        continue;
      }
    }
    const size_t ci = i < R ? (sel_rows ? sel_rows[i] : i) : SIZE_MAX;
    const size_t orig = ci != SIZE_MAX ? (d->row_map ? d->row_map[ci] : ci) : SIZE_MAX;
    if (orig == r) {
      epilogue_row(yr, ya + i * ldy, n, bias, c->clamp_lo, c->clamp_hi);
      i++;
    } else {
      epilogue_row(yr, NULL, n, bias, c->clamp_lo, c->clamp_hi); /* all-zero weight row */
    }
  }
}
