/* Allocation, release, info and unpacking of sparrow_matrix. */
#include <stdlib.h>
#include <string.h>

#include "../common/error.h"
#include "formats.h"

sparrow_matrix* sparrow_matrix_alloc(sparrow_format format, size_t m, size_t k) {
  sparrow_matrix* mat = calloc(1, sizeof *mat);
  if (mat == NULL) return NULL;
  mat->format = format;
  mat->m = m;
  mat->k = k;
  return mat;
}

void sparrow_matrix_free(sparrow_matrix* mat) {
  if (mat == NULL) return;
  switch (mat->format) {
    case SPARROW_FORMAT_CSR:
      free(mat->u.csr.row_ptr);
      free(mat->u.csr.col16);
      free(mat->u.csr.col32);
      free(mat->u.csr.values);
      break;
    case SPARROW_FORMAT_NM:
      free(mat->u.nm.values);
      free(mat->u.nm.idx);
      free(mat->u.nm.shared_values);
      free(mat->u.nm.shared_idx);
      break;
    case SPARROW_FORMAT_BSR:
      free(mat->u.bsr.block_row_ptr);
      free(mat->u.bsr.block_col);
      free(mat->u.bsr.values);
      break;
    case SPARROW_FORMAT_DENSE:
    case SPARROW_FORMAT_CHANNEL:
      free(mat->u.dense.row_map);
      free(mat->u.dense.col_map);
      free(mat->u.dense.w);
      break;
    case SPARROW_FORMAT_GEMM:
      free(mat->u.gemm.w);
      break;
  }
  free(mat);
}

void sparrow_matrix_get_info(const sparrow_matrix* mat, sparrow_matrix_info* info) {
  memset(info, 0, sizeof *info);
  info->format = mat->format;
  info->rows = mat->m;
  info->cols = mat->k;
  info->nnz = mat->nnz;
  info->packed_bytes = mat->packed_bytes;
  info->params = mat->params;
  if (mat->format == SPARROW_FORMAT_GEMM) info->params.block_rows = mat->u.gemm.mr;
  if (mat->format == SPARROW_FORMAT_CSR) info->index_bits = mat->u.csr.col16 != NULL ? 16 : 32;
  if (mat->format == SPARROW_FORMAT_NM) info->nm_shared_rows = mat->u.nm.shared_rows;
  if (mat->format == SPARROW_FORMAT_DENSE || mat->format == SPARROW_FORMAT_CHANNEL) {
    info->kept_rows = mat->u.dense.kept_rows;
    info->kept_cols = mat->u.dense.kept_cols;
  } else {
    info->kept_rows = mat->m;
    info->kept_cols = mat->k;
  }
}

void sparrow_matrix_to_dense(const sparrow_matrix* mat, float* out) {
  const size_t M = mat->m, K = mat->k;
  memset(out, 0, M * K * sizeof(float));
  switch (mat->format) {
    case SPARROW_FORMAT_CSR: {
      const sparrow_csr* c = &mat->u.csr;
      for (size_t r = 0; r < M; r++)
        for (uint32_t p = c->row_ptr[r]; p < c->row_ptr[r + 1]; p++)
          out[r * K + (c->col16 ? c->col16[p] : c->col32[p])] = c->values[p];
      break;
    }
    case SPARROW_FORMAT_NM: {
      const sparrow_nm* s = &mat->u.nm;
      for (size_t r = 0; r < M; r++)
        for (size_t g = 0; g < s->groups; g++) {
          const size_t base = s->stride == 1 ? g * s->m : (g / s->stride) * s->m * s->stride + g % s->stride;
          for (size_t q = 0; q < s->n; q++) {
            const size_t i = (r * s->groups + g) * s->n + q;
            if (s->values[i] != 0.0f) out[r * K + base + (size_t)s->idx[i] * s->stride] = s->values[i];
          }
        }
      break;
    }
    case SPARROW_FORMAT_BSR: {
      const sparrow_bsr* b = &mat->u.bsr;
      for (size_t br = 0; br < b->mb; br++)
        for (uint32_t blk = b->block_row_ptr[br]; blk < b->block_row_ptr[br + 1]; blk++)
          for (size_t i = 0; i < b->r && br * b->r + i < M; i++)
            for (size_t j = 0; j < b->c && (size_t)b->block_col[blk] * b->c + j < K; j++)
              out[(br * b->r + i) * K + (size_t)b->block_col[blk] * b->c + j] =
                  b->values[(size_t)blk * b->r * b->c + i * b->c + j];
      break;
    }
    case SPARROW_FORMAT_DENSE:
    case SPARROW_FORMAT_CHANNEL: {
      const sparrow_dense* d = &mat->u.dense;
      for (size_t i = 0; i < d->kept_rows; i++)
        for (size_t j = 0; j < d->kept_cols; j++)
          out[(d->row_map ? d->row_map[i] : i) * K + (d->col_map ? d->col_map[j] : j)] =
              d->w[i * d->kept_cols + j];
      break;
    }
    case SPARROW_FORMAT_GEMM: {
      const sparrow_gemm* g = &mat->u.gemm;
      for (size_t r = 0; r < M; r++)
        for (size_t j = 0; j < K; j++) out[r * K + j] = g->w[((r / g->mr) * K + j) * g->mr + r % g->mr];
      break;
    }
  }
}
