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
  return SPARROW_ALIGN64(tiles * sizeof(size_t)) + tiles * tile_span(k, tile);
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

size_t sparrow_gated_linear(const sparrow_gated_call* c) {
  const size_t tile = clamp_tile(c->rows, c->tile_rows);
  const size_t tiles = (c->rows + tile - 1) / tile;
  size_t* nks = (size_t*)c->workspace;
  char* lists = (char*)c->workspace + SPARROW_ALIGN64(tiles * sizeof(size_t));
  const size_t span = tile_span(c->k, tile);
  const sparrow_gate_generic_fn fn = sparrow_gate_select(c->kind, c->ukernel);
#if defined(__x86_64__)
  const sparrow_isa isa = sparrow_active_isa();
  const int avx2 = isa == SPARROW_ISA_AVX2 || isa == SPARROW_ISA_AVX512;
#endif
  size_t kept = 0;
  for (size_t ti = 0; ti < tiles; ti++) {
    const size_t r0 = ti * tile, rt = c->rows - r0 < tile ? c->rows - r0 : tile;
    uint32_t* idx = (uint32_t*)(lists + ti * span);
    float* xv = (float*)(lists + ti * span + SPARROW_ALIGN64(c->k * sizeof(uint32_t)));
    const float* xr[SPARROW_GATE_MAX_ROWS];
    float thr[SPARROW_GATE_MAX_ROWS];
    for (size_t t = 0; t < rt; t++) {
      xr[t] = (const float*)((const char*)c->x + (r0 + t) * c->x_stride);
      thr[t] = c->thresholds[(r0 + t) * c->thresholds_stride];
    }
    size_t nk = 0;
    if (rt == 1) {
      nk = select_one(c->k, xr[0], thr[0], idx, xv);
      kept += nk;
    } else if (rt == 8) {
#if defined(__x86_64__)
      if (avx2)
        nk = sparrow_gate_select_tile8__avx2(c->k, xr, thr, idx, xv, &kept);
      else
#endif
        nk = select_tile(8, c->k, xr, thr, idx, xv, &kept);
    } else {
      nk = select_tile(rt, c->k, xr, thr, idx, xv, &kept);
    }
    nks[ti] = nk;
    for (size_t t = 0; t < rt; t++) {
      float* yt = (float*)((char*)c->y + (r0 + t) * c->y_stride);
      if (c->bias != NULL)
        memcpy(yt, c->bias, c->n * sizeof(float));
      else
        memset(yt, 0, c->n * sizeof(float));
    }
  }
  if (c->kind == SPARROW_GATE_CSC) {
    for (size_t ti = 0; ti < tiles; ti++) {
      const size_t r0 = ti * tile, rt = c->rows - r0 < tile ? c->rows - r0 : tile;
      if (nks[ti] == 0) continue;
      const uint32_t* idx = (const uint32_t*)(lists + ti * span);
      const float* xv = (const float*)(lists + ti * span + SPARROW_ALIGN64(c->k * sizeof(uint32_t)));
      ((sparrow_gatedk_csc_fn)fn)(rt, c->n, nks[ti], idx, xv, c->ptr, c->out_rows, c->vals,
                                  (float*)((char*)c->y + r0 * c->y_stride), c->y_stride);
    }
    return kept;
  }
  const size_t nb =
      c->col_block != 0 ? (c->col_block < c->n ? c->col_block : c->n) : (tiles == 1 ? c->n : column_block(c->k, c->n));
  for (size_t o = 0; o < c->n; o += nb) {
    const size_t no = c->n - o < nb ? c->n - o : nb;
    for (size_t ti = 0; ti < tiles; ti++) {
      const size_t r0 = ti * tile, rt = c->rows - r0 < tile ? c->rows - r0 : tile;
      if (nks[ti] == 0) continue;
      const uint32_t* idx = (const uint32_t*)(lists + ti * span);
      const float* xv = (const float*)(lists + ti * span + SPARROW_ALIGN64(c->k * sizeof(uint32_t)));
      ((sparrow_gatedk_dense_fn)fn)(rt, no, nks[ti], idx, xv, c->w + o, c->w_stride,
                                    (float*)((char*)c->y + r0 * c->y_stride) + o, c->y_stride);
    }
  }
  return kept;
}
