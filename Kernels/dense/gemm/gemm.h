/* Packed dense GEMM ("packed" format, SPARROW_FORMAT_GEMM): Sparrow's own dense kernels, beside
 * OpenBLAS's entry. Y = clamp(W.X + bias) with W packed once and X read in place.
 *
 * Layout (sparrow_gemm in pack/formats.h): W (M x K) in panels of MR rows (MR = the bound
 * kernel's block_rows; forcing a kernel with another MR repacks). Panel p holds, for
 * k = 0..K-1, W[p*MR + i][k] for i = 0..MR-1 at
 *     w[(p * K + k) * MR + i]          (K-major inside the panel: one MR-float load per k)
 * Rows past M in the last panel hold 0: kernels compute whole panels and store rows < M only.
 * After the last panel come SPARROW_GEMM_PAD zero floats: a kernel may read up to that many
 * floats past the end of a panel (the AVX2 matrix-vector path loads 8 floats at w + 6k).
 *
 * X (K x N): row k at x + k * x_stride (bytes); no kernel reads X past column n-1 of its
 * tile. Kernels read it in place, except AVX2's 16-column blocks on tiles of two or more panels,
 * which copy 256-row slices of the block into a contiguous stack panel (16 KiB) first, and
 * AVX-512's 48-column blocks, always copied (K slices of at most 256 rows, a 48 KiB stack panel,
 * masked loads at the column edge).
 * Cache blocking (AVX2 and AVX-512): K slices outside, then groups of panels whose W slices fit
 * in L2, then the column blocks: W is read from memory once per slice and group. The packed
 * layout needs no change for it: a panel's K-major run makes its slice [kb, kb + kc) one
 * contiguous MR x kc block. Units (sparrow_ukernel_args / parallel/spmm.c) are panels; with an
 * output-row list the driver passes the panels holding an active row, kernels write every row
 * < M of them and the driver zeroes the inactive rows. With a k_mask, a kernel skips (never
 * reads) X rows whose mask byte is 0: the full matrix's cost, no compacted copy.
 *
 * Register blocks: scalar 4x4; AVX2/FMA 6x16 (12 accumulators, 2 X loads and 6 W broadcasts
 * per k; 6x8 for an 8-column rest) and a matrix-vector path for the last < 8 columns (N = 1:
 * one 8-lane FMA per k over a 6-row panel, W streamed once); NEON 8x8 (16 accumulators, W by
 * lane) and an 8-row matrix-vector path for the last < 8 columns; AVX-512F 8x48 (24 zmm
 * accumulators; 32- and 16-column blocks, the last vector masked) and an 8-row matrix-vector
 * path (two k per 16-lane FMA) for fewer than 8 columns past the last 16-column edge. */
#ifndef SPARROW_GEMM_H
#define SPARROW_GEMM_H
#include "../../pack/formats.h"

#define SPARROW_GEMM_PAD 16

/* Panel of unit u. */
static inline size_t sparrow_gemm_panel(const uint32_t* units, size_t u) { return units != NULL ? units[u] : u; }

/* Rows of panel p that are inside M. */
static inline size_t sparrow_gemm_rows(size_t m, size_t p, size_t mr) {
  const size_t r0 = p * mr;
  return m - r0 < mr ? m - r0 : mr;
}

/* ---- X as an image window (sparrow_ukernel_args.win: a k x k convolution without the
 * unfolded copy). The GEMM kernels read windows through one driver (window.c), except AVX2's,
 * which packs 64-column panels with the vector packer of spmm/avx2-1x64.h: K in equal
 * slices of at most kc_max, groups of at most mc_panels panels, then column blocks of nr; each
 * block's K-slice is built from the image (sparrow_window_panel, rows nr floats apart, zeros
 * past the block's columns) into xp (kc_max * nr floats, 64-byte aligned) and multiplied by
 * every panel of the group with the kernel's `block`:
 *   y[i][j] (+)= sum_{k < kc} wp[k * MR + i] * xp[k * nr + j]   for i < rows, j < cols
 * storing on the first slice and adding to Y on later ones; the last adds bias[i] and clamps
 * (the fused epilogue). y and bias point at the panel's first row. */
typedef void (*sparrow_gemm_block_fn)(size_t kc, const float* wp, const float* xp, size_t cols, float* y, size_t ys,
                                      size_t rows, const float* bias, float lo, float hi, int first, int last);

void sparrow_gemm_window(const sparrow_matrix* w, const uint32_t* units, size_t u0, size_t u1,
                         const sparrow_ukernel_args* a, size_t mr, size_t nr, size_t kc_max, size_t mc_panels,
                         float* xp, sparrow_gemm_block_fn block);
#endif
