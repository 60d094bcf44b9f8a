/* Importing externally supplied sparse data: every index is validated before use. */
#include <stdlib.h>
#include <string.h>

#include "pack-common.h"

typedef struct { uint32_t col; float v; } col_val;

static int cmp_col(const void* a, const void* b) {
  const uint32_t x = ((const col_val*)a)->col, y = ((const col_val*)b)->col;
  return (x > y) - (x < y);
}

/* Validates block/row pointers: ptr[0] == 0, monotone, ptr[rows] == count. */
static sparrow_status check_ptr(const int64_t* ptr, size_t rows, size_t count, const char* what) {
  if (ptr[0] != 0) return sparrow_fail(SPARROW_ERR_MALFORMED, "%s[0] is %lld, expected 0", what, (long long)ptr[0]);
  for (size_t r = 0; r < rows; r++)
    if (ptr[r + 1] < ptr[r])
      return sparrow_fail(SPARROW_ERR_MALFORMED, "%s is not monotone at row %zu (%lld > %lld)", what, r,
                          (long long)ptr[r], (long long)ptr[r + 1]);
  if ((uint64_t)ptr[rows] != count)
    return sparrow_fail(SPARROW_ERR_MALFORMED, "%s ends at %lld but %zu entries were given", what,
                        (long long)ptr[rows], count);
  return SPARROW_OK;
}

sparrow_status sparrow_import_csr(size_t m, size_t k, const int64_t* row_ptr, const int64_t* col_idx,
                                  const float* values, size_t nnz, sparrow_matrix** out) {
  sparrow_clear_error();
  if (out == NULL || row_ptr == NULL || (nnz > 0 && (col_idx == NULL || values == NULL)))
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "NULL argument");
  *out = NULL;
  sparrow_status st = sparrow_check_dims(m, k);
  if (st != SPARROW_OK) return st;
  if (nnz > SPARROW_MAX_NNZ || nnz > m * k)
    return sparrow_fail(SPARROW_ERR_MALFORMED, "%zu nonzeros do not fit a %zu x %zu matrix", nnz, m, k);
  if ((st = check_ptr(row_ptr, m, nnz, "row pointer")) != SPARROW_OK) return st;
  for (size_t p = 0; p < nnz; p++)
    if (col_idx[p] < 0 || (uint64_t)col_idx[p] >= k)
      return sparrow_fail(SPARROW_ERR_MALFORMED, "column index %lld at position %zu is outside 0..<%zu",
                          (long long)col_idx[p], p, k);
  uint32_t* rp = malloc((m + 1) * sizeof(uint32_t));
  uint32_t* col = malloc((nnz ? nnz : 1) * sizeof(uint32_t));
  float* val = malloc((nnz ? nnz : 1) * sizeof(float));
  col_val* tmp = malloc((nnz ? nnz : 1) * sizeof(col_val));
  if (rp == NULL || col == NULL || val == NULL || tmp == NULL) {
    free(rp); free(col); free(val); free(tmp);
    return sparrow_fail(SPARROW_ERR_OUT_OF_MEMORY, "out of memory importing CSR");
  }
  for (size_t r = 0; r <= m; r++) rp[r] = (uint32_t)row_ptr[r];
  for (size_t r = 0; r < m; r++) {
    const size_t p0 = rp[r], len = rp[r + 1] - rp[r];
    for (size_t q = 0; q < len; q++) tmp[q] = (col_val){(uint32_t)col_idx[p0 + q], values[p0 + q]};
    qsort(tmp, len, sizeof *tmp, cmp_col);
    for (size_t q = 0; q < len; q++) {
      if (q > 0 && tmp[q].col == tmp[q - 1].col) {
        const uint32_t dup = tmp[q].col;
        free(rp); free(col); free(val); free(tmp);
        return sparrow_fail(SPARROW_ERR_MALFORMED, "row %zu has column %u twice", r, dup);
      }
      col[p0 + q] = tmp[q].col;
      val[p0 + q] = tmp[q].v;
    }
  }
  free(tmp);
  return sparrow_bound(sparrow_csr_build(m, k, rp, col, val, nnz, out), out);
}

sparrow_status sparrow_import_nm(size_t m, size_t k, const sparrow_pack_params* params,
                                 const float* values, const uint8_t* idx, sparrow_matrix** out) {
  sparrow_clear_error();
  if (out == NULL || values == NULL || idx == NULL)
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "NULL argument");
  *out = NULL;
  sparrow_status st = sparrow_check_dims(m, k);
  if (st != SPARROW_OK) return st;
  size_t groups;
  if ((st = sparrow_nm_check_params(k, params, &groups)) != SPARROW_OK) return st;
  const size_t n = params->nm_n, mm = params->nm_m, s = params->nm_group_stride ? params->nm_group_stride : 1;
  for (size_t r = 0; r < m; r++)
    for (size_t g = 0; g < groups; g++)
      for (size_t q = 0; q < n; q++) {
        const size_t i = (r * groups + g) * n + q;
        if (idx[i] >= mm)
          return sparrow_fail(SPARROW_ERR_MALFORMED, "row %zu group %zu: index %u is not below M = %zu", r, g,
                              idx[i], mm);
        if (q > 0 && idx[i] <= idx[i - 1])
          return sparrow_fail(SPARROW_ERR_MALFORMED, "row %zu group %zu: indices not strictly increasing", r, g);
        if (sparrow_nm_col(g, idx[i], mm, s) >= k && values[i] != 0.0f)
          return sparrow_fail(SPARROW_ERR_MALFORMED, "row %zu group %zu: nonzero at index %u points past K = %zu",
                              r, g, idx[i], k);
      }
  sparrow_matrix* mat;
  if ((st = sparrow_nm_alloc(m, k, params, groups, &mat)) != SPARROW_OK) return st;
  memcpy(mat->u.nm.values, values, m * groups * n * sizeof(float));
  memcpy(mat->u.nm.idx, idx, m * groups * n);
  sparrow_nm_share(mat);
  *out = mat;
  return sparrow_bound(SPARROW_OK, out);
}

sparrow_status sparrow_import_bsr(size_t m, size_t k, size_t r, size_t c, const int64_t* block_row_ptr,
                                  const int64_t* block_col, const float* values, size_t nblocks,
                                  sparrow_matrix** out) {
  sparrow_clear_error();
  if (out == NULL || block_row_ptr == NULL || (nblocks > 0 && (block_col == NULL || values == NULL)))
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "NULL argument");
  *out = NULL;
  sparrow_status st = sparrow_check_dims(m, k);
  if (st != SPARROW_OK) return st;
  if (r == 0 || c == 0 || r > SPARROW_MAX_BLOCK || c > SPARROW_MAX_BLOCK)
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "block %zux%zu: each side must be in 1...%d", r, c,
                        SPARROW_MAX_BLOCK);
  const size_t mb = (m + r - 1) / r, kb = (k + c - 1) / c;
  if (nblocks > mb * kb)
    return sparrow_fail(SPARROW_ERR_MALFORMED, "%zu blocks do not fit %zu x %zu block grid", nblocks, mb, kb);
  if ((st = check_ptr(block_row_ptr, mb, nblocks, "block row pointer")) != SPARROW_OK) return st;
  for (size_t br = 0; br < mb; br++)
    for (int64_t b = block_row_ptr[br]; b < block_row_ptr[br + 1]; b++) {
      if (block_col[b] < 0 || (uint64_t)block_col[b] >= kb)
        return sparrow_fail(SPARROW_ERR_MALFORMED, "block column %lld at block %lld is outside 0..<%zu",
                            (long long)block_col[b], (long long)b, kb);
      if (b > block_row_ptr[br] && block_col[b] <= block_col[b - 1])
        return sparrow_fail(SPARROW_ERR_MALFORMED, "block row %zu: block columns not strictly increasing", br);
    }
  sparrow_matrix* mat;
  if ((st = sparrow_bsr_alloc(m, k, r, c, nblocks, &mat)) != SPARROW_OK) return st;
  sparrow_bsr* b = &mat->u.bsr;
  for (size_t i = 0; i <= mb; i++) b->block_row_ptr[i] = (uint32_t)block_row_ptr[i];
  for (size_t i = 0; i < nblocks; i++) b->block_col[i] = (uint32_t)block_col[i];
  /* Values outside the matrix (edge blocks) are forced to 0, as the layout promises. */
  for (size_t br = 0; br < mb; br++)
    for (uint32_t blk = b->block_row_ptr[br]; blk < b->block_row_ptr[br + 1]; blk++)
      for (size_t i = 0; i < r; i++)
        for (size_t j = 0; j < c; j++) {
          const int inside = br * r + i < m && (size_t)b->block_col[blk] * c + j < k;
          b->values[(size_t)blk * r * c + i * c + j] = inside ? values[(size_t)blk * r * c + i * c + j] : 0.0f;
        }
  *out = mat;
  return sparrow_bound(SPARROW_OK, out);
}
