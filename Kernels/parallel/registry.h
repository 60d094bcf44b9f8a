#ifndef SPARROW_REGISTRY_H
#define SPARROW_REGISTRY_H
#include "../pack/formats.h"
/* The microkernel for this matrix under the active ISA (or the forced one). */
sparrow_spmm_ukernel_fn sparrow_select_ukernel(const sparrow_matrix* w);
/* Dense/channel formats through OpenBLAS (Kernels/dense). */
void sparrow_dense_run(const sparrow_matrix* w, const sparrow_spmm_call* call, int threads);
size_t sparrow_dense_workspace_bytes(const sparrow_matrix* w, size_t n, int has_out_rows, int has_in_channels);
#endif
