/* The gathered GEMM driver (sparrow_gate_kernels.h): the kept input channels become runs of W
 * columns (adjacent channels merged), the kept rows a list; per 16-column block, K slices of at
 * most KC kept rows are built into a compact X panel (from the image window or from X's rows)
 * and multiplied by the kept rows four at a time. Work and memory traffic are proportional to
 * the kept rows times the kept channels; W is read in place. */
#include <string.h>

#include "../common/common.h"
#include "../conv/window.h"
#include "gate.h"
#include "sparrow_gate_kernels.h"

#define KC 256
#define NR SPARROW_GATHER_NR
#define MR SPARROW_GATHER_MR

size_t sparrow_gather_workspace_bytes(size_t m, size_t k) {
  return SPARROW_ALIGN64(m * sizeof(uint32_t)) + 2 * SPARROW_ALIGN64(k * sizeof(uint32_t));
}

void sparrow_gather_prepare(sparrow_gather_plan* p, const sparrow_gather_call* c, int threads) {
  memset(p, 0, sizeof *p);
  p->call = c;
  char* ws = c->workspace;
  uint32_t* rows = (uint32_t*)ws;
  ws += SPARROW_ALIGN64(c->m * sizeof(uint32_t));
  uint32_t* run_k = (uint32_t*)ws;
  ws += SPARROW_ALIGN64(c->k * sizeof(uint32_t));
  uint32_t* run_len = (uint32_t*)ws;
  if (c->out_rows != NULL) {
    p->rows = c->out_rows;
    p->n_rows = c->n_out_rows;
  } else {
    for (size_t r = 0; r < c->m; r++) rows[r] = (uint32_t)r;
    p->rows = rows;
    p->n_rows = c->m;
  }
  const size_t kpc = c->k_per_channel ? c->k_per_channel : 1;
  size_t runs = 0;
  if (c->in_channels == NULL) {
    if (c->k > 0) run_k[0] = 0, run_len[0] = (uint32_t)c->k, runs = 1;
  } else {
    for (size_t i = 0; i < c->n_in_channels; i++) {
      const uint32_t k0 = (uint32_t)(c->in_channels[i] * kpc);
      if (runs > 0 && run_k[runs - 1] + run_len[runs - 1] == k0)
        run_len[runs - 1] += (uint32_t)kpc;
      else
        run_k[runs] = k0, run_len[runs++] = (uint32_t)kpc;
    }
  }
  p->run_k = run_k;
  p->run_len = run_len;
  p->runs = runs;
  p->fn = (void (*)(void))sparrow_gate_select(SPARROW_GATE_ROWS, c->ukernel);
  p->blocks = sparrow_div_up(c->n, NR);
  const size_t t = threads < 1 ? 1 : (size_t)threads;
  p->tasks = p->blocks < t ? p->blocks : t;
  p->per_task = sparrow_div_up(p->blocks, p->tasks);
  p->tasks = sparrow_div_up(p->blocks, p->per_task);
}

/* Rows [kc, kc + len) of the panel: W columns k0 .. k0 + len of X, columns j0 .. j0 + cols. */
static void build(const sparrow_gather_call* c, size_t k0, size_t len, size_t j0, size_t cols, float* dst) {
  if (c->x_window != NULL) {
    sparrow_window_panel(c->x_window, c->x, j0, cols, k0, k0 + len, NULL, dst, NR);
    return;
  }
  for (size_t t = 0; t < len; t++) {
    const float* src = (const float*)((const char*)c->x + (k0 + t) * c->x_stride) + j0;
    float* d = dst + t * NR;
    memcpy(d, src, cols * sizeof(float));
    if (cols < NR) memset(d + cols, 0, (NR - cols) * sizeof(float));
  }
}

void sparrow_gather_task(void* plan, size_t task) {
  const sparrow_gather_plan* p = plan;
  const sparrow_gather_call* c = p->call;
  const sparrow_gatherk_rows_fn fn = (sparrow_gatherk_rows_fn)p->fn;
  const size_t b0 = task * p->per_task, b1 = b0 + p->per_task < p->blocks ? b0 + p->per_task : p->blocks;
  float xp[KC * NR] __attribute__((aligned(64)));
  uint32_t sk[KC], sl[KC];
  for (size_t b = b0; b < b1; b++) {
    const size_t j0 = b * NR, cols = c->n - j0 < NR ? c->n - j0 : NR;
    if (p->runs == 0) {
      /* No kept channel: every kept row is its epilogue of zero. */
      for (size_t i = 0; i < p->n_rows; i++) {
        const size_t r = p->rows[i];
        float v = c->bias != NULL ? c->bias[r] : 0.0f;
        v = v < c->lo ? c->lo : (v > c->hi ? c->hi : v);
        if (c->scale != NULL) v *= c->scale[r];
        float* yr = (float*)((char*)c->y + r * c->y_stride) + j0;
        for (size_t j = 0; j < cols; j++) yr[j] = v;
      }
      continue;
    }
    size_t q = 0, off = 0;
    int first = 1;
    while (q < p->runs) {
      /* One K slice: pieces of runs until KC rows. */
      size_t kc = 0, ns = 0;
      while (q < p->runs && kc < KC) {
        const size_t left = p->run_len[q] - off, take = left < KC - kc ? left : KC - kc;
        sk[ns] = p->run_k[q] + (uint32_t)off;
        sl[ns++] = (uint32_t)take;
        build(c, sk[ns - 1], take, j0, cols, xp + kc * NR);
        kc += take, off += take;
        if (off == p->run_len[q]) q++, off = 0;
      }
      const int last = q == p->runs;
      for (size_t i0 = 0; i0 < p->n_rows; i0 += MR) {
        const size_t nr = p->n_rows - i0 < MR ? p->n_rows - i0 : MR;
        const float* wr[MR];
        float* yr[MR];
        float bias[MR], scale[MR];
        for (size_t i = 0; i < nr; i++) {
          const size_t r = p->rows[i0 + i];
          wr[i] = c->w + r * c->k;
          yr[i] = (float*)((char*)c->y + r * c->y_stride) + j0;
          bias[i] = c->bias != NULL ? c->bias[r] : 0.0f;
          scale[i] = c->scale != NULL ? c->scale[r] : 1.0f;
        }
        fn(nr, wr, ns, sk, sl, xp, cols, yr, bias, c->scale != NULL ? scale : NULL, c->lo, c->hi, first, last);
      }
      first = 0;
    }
  }
}

void sparrow_gather_finish(const sparrow_gather_plan* p) {
  const sparrow_gather_call* c = p->call;
  if (c->out_rows == NULL) return;
  size_t next = 0;
  for (size_t r = 0; r < c->m; r++) {
    if (next < c->n_out_rows && c->out_rows[next] == r) {
      next++;
      continue;
    }
    memset((char*)c->y + r * c->y_stride, 0, c->n * sizeof(float));
  }
}
