/* The activation-sparsity gate's kernels (Kernels/gate, issue 20): linear layers that skip, per
 * token, the inputs whose magnitude falls below a threshold, and with them the weight rows those
 * inputs would multiply. Kernels/gate/gate.h documents the microkernels and their layout. */
#ifndef SPARROW_GATE_KERNELS_H
#define SPARROW_GATE_KERNELS_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* How the K-major weight is stored. */
typedef enum sparrow_gate_kind {
  SPARROW_GATE_DENSE = 0, /* k rows of n floats */
  SPARROW_GATE_CSC = 1,   /* per input k, its nonzeros: output row (u32) and value */
  SPARROW_GATE_ROWS = 2,  /* the gathered GEMM: listed rows of a row-major W x compact X panels */
} sparrow_gate_kind;

/* Tokens one microkernel call multiplies at most (they share the union of their kept inputs). */
#define SPARROW_GATE_MAX_ROWS 8
#define SPARROW_GATE_AUTO ((size_t)-1)

/* The list Kernels/gate/ukernels.inc. */
size_t sparrow_gate_ukernel_count(void);
const char* sparrow_gate_ukernel_name(size_t index); /* NULL past the end */
int sparrow_gate_ukernel_kind(size_t index);         /* a sparrow_gate_kind; -1 past the end */
int sparrow_gate_ukernel_runnable(size_t index);
/* The kernel SPARROW_GATE_AUTO picks for `kind` under the active ISA. */
size_t sparrow_gate_ukernel_auto(sparrow_gate_kind kind);

/* y[r, o] = bias[o] + sum over inputs i that token r keeps of x[r, i] * W[i, o], for r < rows,
 * o < n. Token r keeps input i when !(|x[r, i]| < thresholds[r * thresholds_stride]) (a NaN is
 * kept: never taken for zero); the rest count as zero, as if a ReLU had zeroed them. Tokens go
 * through the microkernel in tiles of `tile_rows` (1 .. SPARROW_GATE_MAX_ROWS) sharing the union
 * of their kept inputs (the gathered-K path: one weight row read serves the tile), a single token
 * a tile of its own (the GEMV path). Every tile's list is built first; a dense weight then goes
 * through in column blocks (`col_block`), each block's weight read by every tile while in L2. Strides are in bytes,
 * except thresholds_stride (elements, 0: one threshold for every token). Callers check sizes when they plan; the call
 * cannot fail. Returns the (token, input) pairs kept, summed over the tokens. */
typedef struct sparrow_gated_call {
  size_t rows, k, n;
  const float* x;
  size_t x_stride;
  const float* thresholds;
  size_t thresholds_stride;
  sparrow_gate_kind kind;
  size_t ukernel; /* an index of the list of this kind, or SPARROW_GATE_AUTO */
  /* dense: row i of W at w + i * w_stride */
  const float* w;
  size_t w_stride;
  /* csc: the nonzeros of row i of W are p in ptr[i] .. ptr[i + 1]: column out_rows[p], value vals[p] */
  const uint32_t* ptr;
  const uint32_t* out_rows;
  const float* vals;
  const float* bias; /* n floats, or NULL */
  float* y;
  size_t y_stride;
  size_t tile_rows;
  void* workspace;  /* sparrow_gated_workspace_bytes(rows, k, tile_rows), 64-byte aligned */
  size_t col_block; /* dense: outputs per column block; 0: automatic (a block's weight in L2) */
  int threads;      /* on sparrow_parallel_for: tiles, then column blocks x groups of tiles; <= 1: one */
} sparrow_gated_call;
size_t sparrow_gated_workspace_bytes(size_t rows, size_t k, size_t tile_rows);
size_t sparrow_gated_linear(const sparrow_gated_call* call);
/* out (rows x k, dense) = x with every value token r skips (|x| < thresholds[r *
 * thresholds_stride], as sparrow_gated_linear decides) set to zero; returns the values kept. For
 * layers whose planned kernel beats the gated one (a sparse weight and several tokens): the
 * planned product on the masked input is the gated result. x_stride in bytes. */
size_t sparrow_gate_mask(size_t rows, size_t k, const float* x, size_t x_stride, const float* thresholds,
                         size_t thresholds_stride, float* out);

/* ---- The gathered GEMM (issue 20, the CNN gate): Y = clamp(W.X + bias) * scale for the listed
 * output rows of a row-major W (m x k, row r at w + r * k) and the listed input channels only
 * (channel c owns columns c * k_per_channel ..< (c + 1) * k_per_channel of W and rows of X), so
 * the work is proportional to the kept rows times the kept channels; nothing is copied from W.
 * X is K x n rows (x_stride bytes apart), or, with x_window, the window over the image at x (a
 * k x k convolution read without an unfolded copy): only the kept channels' im2col rows are
 * built, into 16-column panels. Output rows not listed are written as exact zeros. scale (m
 * floats, or NULL) multiplies each row after the clamp: a learned gate fused into the epilogue.
 * Lists strictly increasing and in range (callers check them; the call cannot fail).
 * Tasks: column blocks of SPARROW_GATHER_NR split into `tasks` ranges (sparrow_gather_task), the
 * inactive rows zeroed by sparrow_gather_finish. */
#define SPARROW_GATHER_MR 4  /* rows per microkernel call */
#define SPARROW_GATHER_NR 16 /* columns per X panel */
typedef struct sparrow_gather_call {
  size_t m, k, n;
  const float* w;
  const uint32_t* out_rows; /* NULL: all m */
  size_t n_out_rows;
  const uint32_t* in_channels; /* NULL: all */
  size_t n_in_channels, k_per_channel;
  const float* x;
  size_t x_stride;
  const struct sparrow_dwconv_shape* x_window;
  float* y;
  size_t y_stride;
  const float* bias;  /* m floats or NULL */
  const float* scale; /* m floats or NULL */
  float lo, hi;
  size_t ukernel;  /* an index of the list of kind ROWS, or SPARROW_GATE_AUTO */
  void* workspace; /* sparrow_gather_workspace_bytes(m, k), 64-byte aligned */
} sparrow_gather_call;
typedef struct sparrow_gather_plan {
  const sparrow_gather_call* call;
  const uint32_t *rows, *run_k, *run_len;
  size_t n_rows, runs, blocks, per_task, tasks;
  void (*fn)(void);
} sparrow_gather_plan;
size_t sparrow_gather_workspace_bytes(size_t m, size_t k);
void sparrow_gather_prepare(sparrow_gather_plan* p, const sparrow_gather_call* call, int threads);
void sparrow_gather_task(void* plan, size_t t);
void sparrow_gather_finish(const sparrow_gather_plan* p);

#ifdef __cplusplus
}
#endif
#endif
