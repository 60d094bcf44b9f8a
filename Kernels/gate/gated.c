/* The input-gated linear driver: per tile of tokens, the union list of kept inputs with each
 * token's (masked) values, built once for every tile; then, for a dense weight, the outputs in
 * column blocks whose weight columns stay in L2 while every tile goes through them (one
 * microkernel call per block and tile); a CSC weight in one call per tile
 * (sparrow_gate_kernels.h). */
#include <math.h>
#include <string.h>

#include "../common/common.h"
#include "gate.h"
#include "sparrow_gate_kernels.h"

static size_t clamp_tile(size_t rows, size_t tile_rows) {
  if (rows <= 1) return 1;
  return tile_rows < 1 ? 1 : (tile_rows > SPARROW_GATE_MAX_ROWS ? SPARROW_GATE_MAX_ROWS : tile_rows);
}

/* One tile's lists: kept inputs (u32) then values (tile floats per kept input). */
static size_t tile_span(size_t k, size_t tile) {
  return SPARROW_ALIGN64(k * sizeof(uint32_t)) + SPARROW_ALIGN64(k * tile * sizeof(float));
}

size_t sparrow_gated_workspace_bytes(size_t rows, size_t k, size_t tile_rows) {
  const size_t tile = clamp_tile(rows, tile_rows);
  const size_t tiles = rows < 1 ? 1 : (rows + tile - 1) / tile;
  return 2 * SPARROW_ALIGN64(tiles * sizeof(size_t)) + tiles * tile_span(k, tile);
}

/* One token: kept inputs and values, branch-free; returns how many. */
static size_t select_one(size_t k, const float* x, float thr, uint32_t* idx, float* xv) {
  size_t m = 0;
  for (size_t i = 0; i < k; i++) {
    const float v = x[i];
    idx[m] = (uint32_t)i;
    xv[m] = v;
    m += !(fabsf(v) < thr);
  }
  return m;
}

/* A tile of rt tokens: the union of their kept inputs, each listed input with every token's
 * value (exact zero where that token skipped it), without branches on the data (activations
 * above and below a threshold alternate unpredictably). Inlined with rt constant for full tiles,
 * so the loop over tokens unrolls. Adds the (token, input) pairs kept to *kept. */
static inline __attribute__((always_inline)) size_t select_tile(const size_t rt, size_t k, const float* const* xr,
                                                                const float* thr, uint32_t* idx, float* xv,
                                                                size_t* kept) {
  size_t nk = 0, count = 0;
  for (size_t i = 0; i < k; i++) {
    uint32_t any = 0;
    float* row = xv + nk * rt;
    for (size_t t = 0; t < rt; t++) {
      const float v = xr[t][i];
      const uint32_t keep = (uint32_t)!(fabsf(v) < thr[t]);
      uint32_t bits;
      memcpy(&bits, &v, sizeof bits);
      bits &= 0u - keep;
      memcpy(row + t, &bits, sizeof bits);
      any |= keep;
      count += keep;
    }
    idx[nk] = (uint32_t)i;
    nk += any;
  }
  *kept += count;
  return nk;
}

/* Output columns per block for a dense weight: the block's kept rows (k of them at most) fit in
 * about 256 KiB, a multiple of 48 (the widest microkernel's block, a multiple of the others'). */
static size_t column_block(size_t k, size_t n) {
  const size_t budget = (size_t)256 << 10;
  size_t nb = budget / (k * sizeof(float) + 1) / 48 * 48;
  if (nb < 48) nb = 48;
  return nb >= n ? n : nb;
}

typedef struct {
  const sparrow_gated_call* c;
  size_t tile, tiles, span, nb, blocks, groups;
  size_t *nks, *kept;
  char* lists;
  sparrow_gate_generic_fn fn;
  int avx2;
} gated_plan;

static uint32_t* tile_idx(const gated_plan* p, size_t ti) { return (uint32_t*)(p->lists + ti * p->span); }
static float* tile_xv(const gated_plan* p, size_t ti) {
  return (float*)(p->lists + ti * p->span + SPARROW_ALIGN64(p->c->k * sizeof(uint32_t)));
}
static size_t tile_rows_of(const gated_plan* p, size_t ti) {
  const size_t r0 = ti * p->tile;
  return p->c->rows - r0 < p->tile ? p->c->rows - r0 : p->tile;
}

/* Task ti of the first phase: tile ti's list, and its rows of y set to the bias (or zero). */
static void select_task(void* plan, size_t ti) {
  const gated_plan* p = (const gated_plan*)plan;
  const sparrow_gated_call* c = p->c;
  const size_t r0 = ti * p->tile, rt = tile_rows_of(p, ti);
  uint32_t* idx = tile_idx(p, ti);
  float* xv = tile_xv(p, ti);
  const float* xr[SPARROW_GATE_MAX_ROWS];
  float thr[SPARROW_GATE_MAX_ROWS];
  for (size_t t = 0; t < rt; t++) {
    xr[t] = (const float*)((const char*)c->x + (r0 + t) * c->x_stride);
    thr[t] = c->thresholds[(r0 + t) * c->thresholds_stride];
  }
  size_t nk = 0, kept = 0;
  if (rt == 1) {
    nk = select_one(c->k, xr[0], thr[0], idx, xv);
    kept = nk;
  } else if (rt == 8) {
#if defined(__x86_64__)
    if (p->avx2)
      nk = sparrow_gate_select_tile8__avx2(c->k, xr, thr, idx, xv, &kept);
    else
#endif
      nk = select_tile(8, c->k, xr, thr, idx, xv, &kept);
  } else {
    nk = select_tile(rt, c->k, xr, thr, idx, xv, &kept);
  }
  p->nks[ti] = nk;
  p->kept[ti] = kept;
  for (size_t t = 0; t < rt; t++) {
    float* yt = (float*)((char*)c->y + (r0 + t) * c->y_stride);
    if (c->bias != NULL)
      memcpy(yt, c->bias, c->n * sizeof(float));
    else
      memset(yt, 0, c->n * sizeof(float));
  }
}

/* A CSC weight: task ti multiplies tile ti (its own rows of y). */
static void csc_task(void* plan, size_t ti) {
  const gated_plan* p = (const gated_plan*)plan;
  const sparrow_gated_call* c = p->c;
  if (p->nks[ti] == 0) return;
  ((sparrow_gatedk_csc_fn)p->fn)(tile_rows_of(p, ti), c->n, p->nks[ti], tile_idx(p, ti), tile_xv(p, ti), c->ptr,
                                 c->out_rows, c->vals, (float*)((char*)c->y + ti * p->tile * c->y_stride), c->y_stride);
}

/* A dense weight: task = (column block, group of tiles); each writes its own block of y. */
static void dense_task(void* plan, size_t task) {
  const gated_plan* p = (const gated_plan*)plan;
  const sparrow_gated_call* c = p->c;
  const size_t b = task / p->groups, g = task % p->groups;
  const size_t o = b * p->nb, no = c->n - o < p->nb ? c->n - o : p->nb;
  const size_t t0 = p->tiles * g / p->groups, t1 = p->tiles * (g + 1) / p->groups;
  for (size_t ti = t0; ti < t1; ti++) {
    if (p->nks[ti] == 0) continue;
    ((sparrow_gatedk_dense_fn)p->fn)(tile_rows_of(p, ti), no, p->nks[ti], tile_idx(p, ti), tile_xv(p, ti), c->w + o,
                                     c->w_stride, (float*)((char*)c->y + ti * p->tile * c->y_stride) + o, c->y_stride);
  }
}

size_t sparrow_gated_linear(const sparrow_gated_call* c) {
  gated_plan p;
  p.c = c;
  p.tile = clamp_tile(c->rows, c->tile_rows);
  p.tiles = (c->rows + p.tile - 1) / p.tile;
  p.span = tile_span(c->k, p.tile);
  p.nks = (size_t*)c->workspace;
  p.kept = (size_t*)((char*)c->workspace + SPARROW_ALIGN64(p.tiles * sizeof(size_t)));
  p.lists = (char*)c->workspace + 2 * SPARROW_ALIGN64(p.tiles * sizeof(size_t));
  p.fn = sparrow_gate_select(c->kind, c->ukernel);
#if defined(__x86_64__)
  const sparrow_isa isa = sparrow_active_isa();
  p.avx2 = isa == SPARROW_ISA_AVX2 || isa == SPARROW_ISA_AVX512;
#else
  p.avx2 = 0;
#endif
  const int threads = c->threads < 1 ? 1 : c->threads;
  if (c->rows == 0) return 0;
  sparrow_parallel_for(p.tiles, p.tiles > 1 ? threads : 1, select_task, &p);
  size_t kept = 0;
  for (size_t ti = 0; ti < p.tiles; ti++) kept += p.kept[ti];
  if (c->kind == SPARROW_GATE_CSC) {
    sparrow_parallel_for(p.tiles, threads, csc_task, &p);
    return kept;
  }
  if (c->col_block != 0) {
    p.nb = c->col_block < c->n ? c->col_block : c->n;
  } else if (p.tiles > 1) {
    p.nb = column_block(c->k, c->n);
  } else {
    /* One tile (a matrix-vector product, or a few tokens): the outputs split between threads in
     * blocks of 48 (every kernel's vector width divides it). */
    const size_t per = (c->n + (size_t)threads - 1) / (size_t)threads;
    p.nb = threads == 1 ? c->n : (per + 47) / 48 * 48;
  }
  p.blocks = (c->n + p.nb - 1) / p.nb;
  /* Enough tasks for every thread: column blocks times groups of tiles. */
  p.groups = threads == 1 || p.blocks >= 4 * (size_t)threads ? 1 : (size_t)threads;
  if (p.groups > p.tiles) p.groups = p.tiles;
  sparrow_parallel_for(p.blocks * p.groups, threads, dense_task, &p);
  return kept;
}

/* ---- Masking (a sparse weight, several tokens): the input with skipped values zeroed. */

static size_t mask_rows(size_t rows, size_t k, const float* x, size_t x_stride, const float* thresholds,
                        size_t thresholds_stride, float* out) {
  size_t kept = 0;
  for (size_t r = 0; r < rows; r++) {
    const float* xr = (const float*)((const char*)x + r * x_stride);
    const float thr = thresholds[r * thresholds_stride];
    float* o = out + r * k;
    for (size_t i = 0; i < k; i++) {
      const int keep = !(fabsf(xr[i]) < thr);
      o[i] = keep ? xr[i] : 0.0f;
      kept += (size_t)keep;
    }
  }
  return kept;
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) static size_t mask_rows_avx2(size_t rows, size_t k, const float* x, size_t x_stride,
                                                                 const float* thresholds, size_t thresholds_stride,
                                                                 float* out) {
  return mask_rows(rows, k, x, x_stride, thresholds, thresholds_stride, out);
}
#endif

size_t sparrow_gate_mask(size_t rows, size_t k, const float* x, size_t x_stride, const float* thresholds,
                         size_t thresholds_stride, float* out) {
#if defined(__x86_64__)
  const sparrow_isa isa = sparrow_active_isa();
  if (isa == SPARROW_ISA_AVX2 || isa == SPARROW_ISA_AVX512)
    return mask_rows_avx2(rows, k, x, x_stride, thresholds, thresholds_stride, out);
#endif
  return mask_rows(rows, k, x, x_stride, thresholds, thresholds_stride, out);
}
