/* Input-gated linear layers (the activation-sparsity gate, issue 20): microkernels that multiply
 * only the weight rows of the inputs a token keeps.
 *
 * Layout: the weight is input-channel-major (K-major), the transpose of the Swift layer's
 * `N_out x K` matrix: row k holds the n outputs input k feeds.
 *   dense: w + k * w_stride (bytes) is row k, n floats.
 *   csc:   ptr[k] .. ptr[k + 1] index the nonzeros of row k: output rows[p] (u32), value vals[p].
 * A call multiplies `rows` tokens (1 .. SPARROW_GATE_MAX_ROWS) that share one list of nk kept
 * inputs idx[0 .. nk) (increasing, each < K); token t's value of input idx[j] is
 * xv[j * rows + t] (0 where that token skipped the input but another token of the call kept it).
 * Every kernel ADDS into y: y[t * y_stride + o] += sum_j xv[j * rows + t] * W[idx[j], o] for
 * t < rows, o < n (the driver writes bias or zero first). Kernels never read past row ends
 * (AVX tails use masked loads, NEON tails scalar code), never allocate and cannot fail.
 *
 * The list (Kernels/gate/ukernels.inc) feeds the dispatcher (Kernels/dispatch/gate.c), the tests
 * (GateKernelTests, Tests/KernelsNEON/gate_test.c: every runnable entry against a plain loop that
 * masks the inputs and multiplies densely) and `sparrow bench gate`. */
#ifndef SPARROW_GATE_H
#define SPARROW_GATE_H
#include <stddef.h>
#include <stdint.h>

#include "sparrow_gate_kernels.h"
#include "sparrow_kernels.h"

typedef void (*sparrow_gatedk_dense_fn)(size_t rows, size_t n, size_t nk, const uint32_t* idx, const float* xv,
                                        const float* w, size_t w_stride, float* y, size_t y_stride);
typedef void (*sparrow_gatedk_csc_fn)(size_t rows, size_t n, size_t nk, const uint32_t* idx, const float* xv,
                                      const uint32_t* ptr, const uint32_t* out_rows, const float* vals, float* y,
                                      size_t y_stride);

#define SPARROW_GATE_DECL_DENSE(fn)                                                                                \
  void fn(size_t rows, size_t n, size_t nk, const uint32_t* idx, const float* xv, const float* w, size_t w_stride, \
          float* y, size_t y_stride);
#define SPARROW_GATE_DECL_CSC(fn)                                                                      \
  void fn(size_t rows, size_t n, size_t nk, const uint32_t* idx, const float* xv, const uint32_t* ptr, \
          const uint32_t* out_rows, const float* vals, float* y, size_t y_stride);

/* Gathered GEMM (kind ROWS): rows (1 .. SPARROW_GATHER_MR) output rows of one 16-column block.
 * Row i's weights are w[i][run_k[q] + t] for runs q < runs, t < run_len[q]; X is the compact
 * panel xp (64-byte aligned): one row of SPARROW_GATHER_NR floats per (run, t) in that order,
 * lanes >= cols zero. y[i] points at row i's column 0 of the block; only columns < cols are
 * read or written. first: y = acc, else y += acc; last: then y = clamp(y + bias[i], lo, hi) *
 * scale[i] (bias, scale: rows floats or NULL). Reads nothing past row ends or the panel. */
typedef void (*sparrow_gatherk_rows_fn)(size_t rows, const float* const* w, size_t runs, const uint32_t* run_k,
                                        const uint32_t* run_len, const float* xp, size_t cols, float* const* y,
                                        const float* bias, const float* scale, float lo, float hi, int first, int last);
#define SPARROW_GATE_DECL_ROWS(fn)                                                                                  \
  void fn(size_t rows, const float* const* w, size_t runs, const uint32_t* run_k, const uint32_t* run_len,          \
          const float* xp, size_t cols, float* const* y, const float* bias, const float* scale, float lo, float hi, \
          int first, int last);

/* The selection of a full tile of 8 tokens (gated.c), AVX2: the union list of kept inputs and the
 * tokens' values, as gated.c's portable loop writes them; returns the list's length and adds the
 * (token, input) pairs kept to *kept. */
size_t sparrow_gate_select_tile8__avx2(size_t k, const float* const* xr, const float* thr, uint32_t* idx, float* xv,
                                       size_t* kept);

#define SPARROW_GATE_UKERNEL(fn, KIND, ISA) SPARROW_GATE_DECL_##KIND(fn)
#include "ukernels.inc"
#undef SPARROW_GATE_UKERNEL

typedef void (*sparrow_gate_generic_fn)(void);
/* Kernel `index` when it is of `kind` and runs here, else the active ISA's for `kind`
 * (Kernels/dispatch/gate.c). */
sparrow_gate_generic_fn sparrow_gate_select(sparrow_gate_kind kind, size_t index);
#endif
