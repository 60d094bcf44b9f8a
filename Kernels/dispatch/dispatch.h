/* The one dispatcher (dispatch.c): the kernel lists (spmm/ukernels.inc, conv/dwconv/ukernels.inc,
 * rowwise/ukernels.inc)
 * as tables, the choice of kernel per matrix, made once when it is packed, and the ISA-specific
 * helpers that ISA-neutral code needs. Nothing else in the library reads the ISA. */
#ifndef SPARROW_DISPATCH_H
#define SPARROW_DISPATCH_H
#include "../common/even.h"
#include "../common/transpose.h"
#include "../conv/dconv/dconv.h"
#include "../conv/dwconv/dwconv.h"
#include "../pack/formats.h"
#include "../rowwise/rowwise.h"

/* Whole-call kernels: the call at once (threads inside); their workspace size. */
typedef void (*sparrow_spmm_whole_fn)(const sparrow_matrix* w, const sparrow_spmm_call* call, int threads);
typedef size_t (*sparrow_spmm_workspace_fn)(const sparrow_matrix* w, size_t n, int has_out_rows, int has_in_channels);

/* One entry of spmm/ukernels.inc. Exactly one of `tile` and `whole` is set. */
struct sparrow_spmm_kernel {
  sparrow_ukernel_desc desc;
  sparrow_spmm_ukernel_fn tile;        /* tiled: one tile of row units x columns (parallel/spmm.c splits) */
  sparrow_spmm_whole_fn whole;         /* whole-call: the dense formats through OpenBLAS */
  sparrow_spmm_workspace_fn workspace_bytes;
  int honours_mask;                    /* ukernels.inc MASK */
  int reads_window;                    /* ukernels.inc WINDOW */
};

/* Binds w->kernel and w->compact_kernel to the automatic choice under the active ISA: called
 * once by every packer and importer. */
void sparrow_dispatch_bind(sparrow_matrix* w);

/* GEMM: the panel height (block_rows) of the kernel the active ISA binds: what the packer packs for. */
uint32_t sparrow_gemm_auto_mr(void);

/* Depthwise row kernel `index` (conv/dwconv/ukernels.inc), or the active ISA's for
 * SPARROW_DWCONV_AUTO (resolved once per ISA). */
sparrow_dwconv_ukernel_fn sparrow_dwconv_select(size_t index);
/* The dense direct-convolution kernel at `index` (SPARROW_DWCONV_AUTO or out of range: the active ISA's). */
sparrow_dconv_ukernel_fn sparrow_dconv_select(size_t index);
/* The pixel-major one likewise (conv/dconv/pukernels.inc). */
sparrow_pconv_ukernel_fn sparrow_pconv_select(size_t index);
/* The entry's kernel for `panels` (2 or 4) adjacent panels per call, or NULL (dconv.h). */
sparrow_pconv_wide_fn sparrow_pconv_select_wide(size_t index, size_t panels);

/* Row kernel `index` (rowwise/ukernels.inc) when it computes `op` and can run here, else the
 * active ISA's for `op` (SPARROW_ROW_AUTO): cast to the op's sparrow_*_ukernel_fn. */
typedef void (*sparrow_row_generic_fn)(void);
sparrow_row_generic_fn sparrow_row_select(sparrow_row_op op, size_t index);

/* The stride-2 row gather of the active ISA (im2col and padded planes). */
sparrow_even_fn sparrow_dispatch_even(void);
sparrow_split2_fn sparrow_dispatch_split2(void);
/* The 2x2 stride-2 max-pooling row of the active ISA (scalar: none; maxpool.c's plain loops). */
sparrow_pool2_fn sparrow_dispatch_pool2(void);
/* The matrix transpose of the active ISA (common/transpose.h). */
sparrow_transpose_fn sparrow_dispatch_transpose(void);

/* Workspace of the tiled kernels (parallel/spmm.c). */
size_t sparrow_spmm_tiles_workspace_bytes(const sparrow_matrix* w, size_t n, int has_out_rows, int has_in_channels);
/* Dense/channel formats through OpenBLAS (dense/gemm.c). */
void sparrow_dense_run(const sparrow_matrix* w, const sparrow_spmm_call* call, int threads);
size_t sparrow_dense_workspace_bytes(const sparrow_matrix* w, size_t n, int has_out_rows, int has_in_channels);
/* Active input channels (parallel/compact.c): workspace bytes for a compacted copy, and the
 * copy: only columns with mask[k] = 1 and only rows/block rows `units` (NULL: all). The copy
 * runs w->compact_kernel. */
size_t sparrow_compact_bytes(const sparrow_matrix* w);
const sparrow_matrix* sparrow_compact(const sparrow_matrix* w, const uint8_t* mask, const uint32_t* units,
                                      size_t n_units, void* workspace);
#endif
