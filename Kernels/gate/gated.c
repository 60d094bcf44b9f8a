/* The input-gated linear driver: per tile of tokens, the union list of kept inputs with each
 * token's (masked) values, then one microkernel call (sparrow_gate_kernels.h). */
#include <math.h>
#include <string.h>

#include "../common/common.h"
#include "gate.h"
#include "sparrow_gate_kernels.h"

size_t sparrow_gated_workspace_bytes(size_t k, size_t tile_rows) {
  const size_t tile = tile_rows < 1 ? 1 : (tile_rows > SPARROW_GATE_MAX_ROWS ? SPARROW_GATE_MAX_ROWS : tile_rows);
  return SPARROW_ALIGN64(k * sizeof(uint32_t)) + SPARROW_ALIGN64(k * tile * sizeof(float));
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

size_t sparrow_gated_linear(const sparrow_gated_call* c) {
  const size_t tile =
      c->tile_rows < 1 ? 1 : (c->tile_rows > SPARROW_GATE_MAX_ROWS ? SPARROW_GATE_MAX_ROWS : c->tile_rows);
  uint32_t* idx = (uint32_t*)c->workspace;
  float* xv = (float*)((char*)c->workspace + SPARROW_ALIGN64(c->k * sizeof(uint32_t)));
  const sparrow_gate_generic_fn fn = sparrow_gate_select(c->kind, c->ukernel);
  size_t kept = 0;
  for (size_t r0 = 0; r0 < c->rows; r0 += tile) {
    const size_t rt = c->rows - r0 < tile ? c->rows - r0 : tile;
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
    } else {
      for (size_t i = 0; i < c->k; i++) {
        int any = 0;
        idx[nk] = (uint32_t)i;
        for (size_t t = 0; t < rt; t++) {
          const float v = xr[t][i];
          const int keep = !(fabsf(v) < thr[t]);
          xv[nk * rt + t] = keep ? v : 0.0f;
          any |= keep;
          kept += (size_t)keep;
        }
        nk += (size_t)any;
      }
    }
    float* y0 = (float*)((char*)c->y + r0 * c->y_stride);
    for (size_t t = 0; t < rt; t++) {
      float* yt = (float*)((char*)y0 + t * c->y_stride);
      if (c->bias != NULL)
        memcpy(yt, c->bias, c->n * sizeof(float));
      else
        memset(yt, 0, c->n * sizeof(float));
    }
    if (nk == 0) continue;
    if (c->kind == SPARROW_GATE_CSC)
      ((sparrow_gatedk_csc_fn)fn)(rt, c->n, nk, idx, xv, c->ptr, c->out_rows, c->vals, y0, c->y_stride);
    else
      ((sparrow_gatedk_dense_fn)fn)(rt, c->n, nk, idx, xv, c->w, c->w_stride, y0, c->y_stride);
  }
  return kept;
}
