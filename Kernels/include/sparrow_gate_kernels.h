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
} sparrow_gate_kind;

/* Tokens one microkernel call multiplies at most (they share the union of their kept inputs). */
#define SPARROW_GATE_MAX_ROWS 4
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
 * a tile of its own (the GEMV path). Strides are in bytes, except thresholds_stride (elements,
 * 0: one threshold for every token). Callers check sizes when they plan; the call cannot fail.
 * Returns the (token, input) pairs kept, summed over the tokens. One thread. */
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
  void* workspace; /* sparrow_gated_workspace_bytes(k, tile_rows), 64-byte aligned */
} sparrow_gated_call;
size_t sparrow_gated_workspace_bytes(size_t k, size_t tile_rows);
size_t sparrow_gated_linear(const sparrow_gated_call* call);

#ifdef __cplusplus
}
#endif
#endif
