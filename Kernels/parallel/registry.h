#ifndef SPARROW_REGISTRY_H
#define SPARROW_REGISTRY_H
#include "../pack/formats.h"
/* The microkernel for this matrix under the active ISA (or the forced one). */
sparrow_spmm_ukernel_fn sparrow_select_ukernel(const sparrow_matrix* w);
/* Dense/channel formats through OpenBLAS (Kernels/dense). */
void sparrow_dense_run(const sparrow_matrix* w, const sparrow_spmm_call* call, int threads);
size_t sparrow_dense_workspace_bytes(const sparrow_matrix* w, size_t n, int has_out_rows, int has_in_channels);
/* 1 when the kernel chosen for w runs an uncompacted matrix under a k_mask (ukernels.inc MASK). */
int sparrow_ukernel_honours_mask(const sparrow_matrix* w);
/* Kernel index of `format` for the ISA of kernel `forced` (SIZE_MAX stays SIZE_MAX). */
size_t sparrow_ukernel_same_isa(size_t forced, sparrow_format format);
/* Active input channels (Kernels/parallel/compact.c): workspace bytes for a compacted copy,
 * and the copy: only columns with mask[k] = 1 and only rows/block rows `units` (NULL: all). */
size_t sparrow_compact_bytes(const sparrow_matrix* w);
const sparrow_matrix* sparrow_compact(const sparrow_matrix* w, const uint8_t* mask, const uint32_t* units,
                                      size_t n_units, void* workspace);
#endif
