#ifndef SPARROW_PACK_COMMON_H
#define SPARROW_PACK_COMMON_H
#include "../common/error.h"
#include "formats.h"
#include "../dispatch/dispatch.h"

sparrow_matrix* sparrow_matrix_alloc(sparrow_format format, size_t m, size_t k);

/* Every packer and importer returns through this: a matrix made is bound to its kernel once. */
static inline sparrow_status sparrow_bound(sparrow_status st, sparrow_matrix** out) {
  if (st == SPARROW_OK && *out != NULL) sparrow_dispatch_bind(*out);
  return st;
}

/* Checks 1 <= m, k <= SPARROW_MAX_DIM and m * k fits. */
sparrow_status sparrow_check_dims(size_t m, size_t k);

/* Takes ownership of row_ptr/col/values (malloc'd, columns sorted per row) and builds a CSR
 * matrix, narrowing columns to u16 where K allows. Frees the arrays on failure. */
sparrow_status sparrow_csr_build(size_t m, size_t k, uint32_t* row_ptr, uint32_t* col,
                                 float* values, size_t nnz, sparrow_matrix** out);

/* Checks N:M parameters against K and returns the group count. */
sparrow_status sparrow_nm_check_params(size_t k, const sparrow_pack_params* p, size_t* groups);

sparrow_status sparrow_nm_alloc(size_t m, size_t k, const sparrow_pack_params* p, size_t groups,
                                sparrow_matrix** out);
sparrow_status sparrow_bsr_alloc(size_t m, size_t k, size_t r, size_t c, size_t nblocks,
                                 sparrow_matrix** out);

/* N:M: builds the shared-pattern layout (formats.h) from values/idx when every block of
 * SPARROW_NM_SHARED_ROWS rows shares its positions; leaves the matrix unshared otherwise (or
 * when out of memory: the plain layout is complete on its own). */
void sparrow_nm_share(sparrow_matrix* mat);

/* GEMM: repacks the panels for another panel height (a forced kernel's block_rows). */
sparrow_status sparrow_gemm_repack(sparrow_matrix* mat, uint32_t mr);

/* Column of pair position `idx` in group g (formats.h). */
static inline size_t sparrow_nm_col(size_t g, size_t idx, size_t m, size_t stride) {
  return stride == 1 ? g * m + idx : ((g / stride) * m + idx) * stride + g % stride;
}

#endif
