/* Packing a dense row-major matrix with zeros into each format. */
#include <stdlib.h>
#include <string.h>

#include "pack-common.h"
#include "../dense/gemm/gemm.h"

sparrow_status sparrow_check_dims(size_t m, size_t k) {
  if (m == 0 || k == 0 || m > SPARROW_MAX_DIM || k > SPARROW_MAX_DIM)
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "matrix %zu x %zu: each side must be in 1...%zu",
                        m, k, SPARROW_MAX_DIM);
  if (m > ((size_t)1 << 40) / k)
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "matrix %zu x %zu is too large", m, k);
  return SPARROW_OK;
}

sparrow_status sparrow_csr_build(size_t m, size_t k, uint32_t* row_ptr, uint32_t* col,
                                 float* values, size_t nnz, sparrow_matrix** out) {
  sparrow_matrix* mat = sparrow_matrix_alloc(SPARROW_FORMAT_CSR, m, k);
  if (mat == NULL) goto oom;
  sparrow_csr* c = &mat->u.csr;
  c->row_ptr = row_ptr;
  c->values = values;
  size_t index_bytes = 4;
  if (k <= 65536) {
    c->col16 = malloc(nnz ? nnz * sizeof(uint16_t) : 1);
    if (c->col16 == NULL) {
      free(col);
      sparrow_matrix_free(mat);
      return sparrow_fail(SPARROW_ERR_OUT_OF_MEMORY, "out of memory packing CSR");
    }
    for (size_t p = 0; p < nnz; p++) c->col16[p] = (uint16_t)col[p];
    free(col);
    index_bytes = 2;
  } else {
    c->col32 = col;
  }
  mat->nnz = nnz;
  mat->packed_bytes = (m + 1) * 4 + nnz * (index_bytes + 4);
  *out = mat;
  return SPARROW_OK;
oom:
  free(row_ptr);
  free(col);
  free(values);
  return sparrow_fail(SPARROW_ERR_OUT_OF_MEMORY, "out of memory packing CSR");
}

static sparrow_status pack_csr(const float* w, size_t m, size_t k, sparrow_matrix** out) {
  size_t nnz = 0;
  for (size_t i = 0; i < m * k; i++) nnz += w[i] != 0.0f;
  if (nnz > SPARROW_MAX_NNZ) return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "too many nonzeros");
  uint32_t* row_ptr = malloc((m + 1) * sizeof(uint32_t));
  uint32_t* col = malloc((nnz ? nnz : 1) * sizeof(uint32_t));
  float* values = malloc((nnz ? nnz : 1) * sizeof(float));
  if (row_ptr == NULL || col == NULL || values == NULL) {
    free(row_ptr); free(col); free(values);
    return sparrow_fail(SPARROW_ERR_OUT_OF_MEMORY, "out of memory packing CSR");
  }
  size_t p = 0;
  for (size_t r = 0; r < m; r++) {
    row_ptr[r] = (uint32_t)p;
    for (size_t j = 0; j < k; j++)
      if (w[r * k + j] != 0.0f) {
        col[p] = (uint32_t)j;
        values[p++] = w[r * k + j];
      }
  }
  row_ptr[m] = (uint32_t)p;
  return sparrow_csr_build(m, k, row_ptr, col, values, nnz, out);
}

sparrow_status sparrow_nm_check_params(size_t k, const sparrow_pack_params* p, size_t* groups) {
  if (p == NULL) return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "N:M needs parameters");
  const size_t n = p->nm_n, mm = p->nm_m, s = p->nm_group_stride ? p->nm_group_stride : 1;
  if (n == 0 || mm == 0 || n > mm || mm > 32)
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "N:M pattern %zu:%zu: need 1 <= N <= M <= 32", n, mm);
  if (s == 1) {
    *groups = (k + mm - 1) / mm;
  } else {
    if (k % s != 0 || (k / s) % mm != 0)
      return sparrow_fail(SPARROW_ERR_PATTERN,
                          "N:M %zu:%zu along channels: K = %zu is not channels x %zu with channels a multiple of %zu",
                          n, mm, k, s, mm);
    *groups = k / mm;
  }
  return SPARROW_OK;
}

static sparrow_status alloc_nm(size_t m, size_t k, const sparrow_pack_params* p, size_t groups,
                               sparrow_matrix** out) {
  sparrow_matrix* mat = sparrow_matrix_alloc(SPARROW_FORMAT_NM, m, k);
  if (mat == NULL) return sparrow_fail(SPARROW_ERR_OUT_OF_MEMORY, "out of memory packing N:M");
  sparrow_nm* s = &mat->u.nm;
  s->n = p->nm_n;
  s->m = p->nm_m;
  s->stride = p->nm_group_stride ? p->nm_group_stride : 1;
  s->groups = (uint32_t)groups;
  const size_t pairs = m * groups * s->n;
  s->values = malloc(pairs * sizeof(float));
  s->idx = malloc(pairs);
  if (s->values == NULL || s->idx == NULL) {
    sparrow_matrix_free(mat);
    return sparrow_fail(SPARROW_ERR_OUT_OF_MEMORY, "out of memory packing N:M");
  }
  mat->params = *p;
  mat->params.nm_group_stride = s->stride;
  mat->nnz = pairs;
  mat->packed_bytes = pairs * (sizeof(float) + 1);
  *out = mat;
  return SPARROW_OK;
}

static sparrow_status pack_nm(const float* w, size_t m, size_t k, const sparrow_pack_params* p,
                              sparrow_matrix** out) {
  size_t groups;
  sparrow_status st = sparrow_nm_check_params(k, p, &groups);
  if (st != SPARROW_OK) return st;
  sparrow_matrix* mat;
  if ((st = alloc_nm(m, k, p, groups, &mat)) != SPARROW_OK) return st;
  sparrow_nm* s = &mat->u.nm;
  for (size_t r = 0; r < m; r++)
    for (size_t g = 0; g < groups; g++) {
      float* v = s->values + (r * groups + g) * s->n;
      uint8_t* ix = s->idx + (r * groups + g) * s->n;
      /* Nonzeros first, then padding at unused positions, kept in increasing position order. */
      uint32_t used = 0;
      size_t cnt = 0;
      for (size_t q = 0; q < s->m; q++) {
        const size_t col = sparrow_nm_col(g, q, s->m, s->stride);
        if (col >= k || w[r * k + col] == 0.0f) continue;
        if (cnt == s->n) {
          sparrow_matrix_free(mat);
          return sparrow_fail(SPARROW_ERR_PATTERN,
                              "row %zu, group %zu has more than %u nonzeros: not %u:%u sparse", r, g,
                              p->nm_n, p->nm_n, p->nm_m);
        }
        used |= 1u << q;
        cnt++;
      }
      /* Padding takes free positions inside K first; only a last group with fewer than n
       * columns inside K gets padding past K (value 0, never read: see formats.h). */
      for (size_t q = 0; q < s->m && cnt < s->n; q++)
        if (!(used & (1u << q)) && sparrow_nm_col(g, q, s->m, s->stride) < k) { used |= 1u << q; cnt++; }
      for (size_t q = 0; q < s->m && cnt < s->n; q++)
        if (!(used & (1u << q))) { used |= 1u << q; cnt++; }
      size_t t = 0;
      for (size_t q = 0; q < s->m && t < s->n; q++) {
        if (!(used & (1u << q))) continue;
        const size_t col = sparrow_nm_col(g, q, s->m, s->stride);
        ix[t] = (uint8_t)q;
        v[t++] = col < k ? w[r * k + col] : 0.0f;
      }
    }
  sparrow_nm_share(mat);
  *out = mat;
  return SPARROW_OK;
}

static sparrow_status alloc_bsr(size_t m, size_t k, size_t r, size_t c, size_t nblocks,
                                sparrow_matrix** out) {
  if (r == 0 || c == 0 || r > SPARROW_MAX_BLOCK || c > SPARROW_MAX_BLOCK)
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "block %zux%zu: each side must be in 1...%d", r, c,
                        SPARROW_MAX_BLOCK);
  sparrow_matrix* mat = sparrow_matrix_alloc(SPARROW_FORMAT_BSR, m, k);
  if (mat == NULL) return sparrow_fail(SPARROW_ERR_OUT_OF_MEMORY, "out of memory packing BSR");
  sparrow_bsr* b = &mat->u.bsr;
  b->r = (uint32_t)r;
  b->c = (uint32_t)c;
  b->mb = (uint32_t)((m + r - 1) / r);
  b->kb = (uint32_t)((k + c - 1) / c);
  b->nblocks = (uint32_t)nblocks;
  b->block_row_ptr = malloc((b->mb + 1) * sizeof(uint32_t));
  b->block_col = malloc((nblocks ? nblocks : 1) * sizeof(uint32_t));
  b->values = calloc(nblocks ? nblocks * r * c : 1, sizeof(float));
  if (b->block_row_ptr == NULL || b->block_col == NULL || b->values == NULL) {
    sparrow_matrix_free(mat);
    return sparrow_fail(SPARROW_ERR_OUT_OF_MEMORY, "out of memory packing BSR");
  }
  mat->params.block_rows = (uint32_t)r;
  mat->params.block_cols = (uint32_t)c;
  mat->nnz = nblocks * r * c;
  mat->packed_bytes = (b->mb + 1) * 4 + nblocks * (4 + r * c * sizeof(float));
  *out = mat;
  return SPARROW_OK;
}

static int block_nonzero(const float* w, size_t m, size_t k, size_t r0, size_t k0, size_t r, size_t c) {
  for (size_t i = r0; i < r0 + r && i < m; i++)
    for (size_t j = k0; j < k0 + c && j < k; j++)
      if (w[i * k + j] != 0.0f) return 1;
  return 0;
}

static sparrow_status pack_bsr(const float* w, size_t m, size_t k, const sparrow_pack_params* p,
                               sparrow_matrix** out) {
  if (p == NULL) return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "BSR needs a block shape");
  const size_t r = p->block_rows, c = p->block_cols;
  if (r == 0 || c == 0 || r > SPARROW_MAX_BLOCK || c > SPARROW_MAX_BLOCK)
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "block %zux%zu: each side must be in 1...%d", r, c,
                        SPARROW_MAX_BLOCK);
  const size_t mb = (m + r - 1) / r, kb = (k + c - 1) / c;
  size_t nblocks = 0;
  for (size_t br = 0; br < mb; br++)
    for (size_t bc = 0; bc < kb; bc++) nblocks += (size_t)block_nonzero(w, m, k, br * r, bc * c, r, c);
  sparrow_matrix* mat;
  sparrow_status st = alloc_bsr(m, k, r, c, nblocks, &mat);
  if (st != SPARROW_OK) return st;
  sparrow_bsr* b = &mat->u.bsr;
  size_t blk = 0;
  for (size_t br = 0; br < mb; br++) {
    b->block_row_ptr[br] = (uint32_t)blk;
    for (size_t bc = 0; bc < kb; bc++) {
      if (!block_nonzero(w, m, k, br * r, bc * c, r, c)) continue;
      b->block_col[blk] = (uint32_t)bc;
      for (size_t i = 0; i < r && br * r + i < m; i++)
        for (size_t j = 0; j < c && bc * c + j < k; j++)
          b->values[blk * r * c + i * c + j] = w[(br * r + i) * k + bc * c + j];
      blk++;
    }
  }
  b->block_row_ptr[mb] = (uint32_t)blk;
  *out = mat;
  return SPARROW_OK;
}

/* DENSE keeps everything; CHANNEL drops all-zero rows and columns. */
static sparrow_status pack_dense(const float* w, size_t m, size_t k, int drop_zero_lines,
                                 sparrow_matrix** out) {
  sparrow_matrix* mat = sparrow_matrix_alloc(drop_zero_lines ? SPARROW_FORMAT_CHANNEL : SPARROW_FORMAT_DENSE, m, k);
  if (mat == NULL) return sparrow_fail(SPARROW_ERR_OUT_OF_MEMORY, "out of memory packing");
  sparrow_dense* d = &mat->u.dense;
  uint8_t* row_nz = calloc(m, 1);
  uint8_t* col_nz = calloc(k, 1);
  if (row_nz == NULL || col_nz == NULL) goto oom;
  size_t kr = m, kc = k;
  if (drop_zero_lines) {
    for (size_t i = 0; i < m; i++)
      for (size_t j = 0; j < k; j++)
        if (w[i * k + j] != 0.0f) row_nz[i] = col_nz[j] = 1;
    kr = kc = 0;
    for (size_t i = 0; i < m; i++) kr += row_nz[i];
    for (size_t j = 0; j < k; j++) kc += col_nz[j];
    d->row_map = malloc((kr ? kr : 1) * sizeof(uint32_t));
    d->col_map = malloc((kc ? kc : 1) * sizeof(uint32_t));
    if (d->row_map == NULL || d->col_map == NULL) goto oom;
    for (size_t i = 0, t = 0; i < m; i++) if (row_nz[i]) d->row_map[t++] = (uint32_t)i;
    for (size_t j = 0, t = 0; j < k; j++) if (col_nz[j]) d->col_map[t++] = (uint32_t)j;
  }
  d->kept_rows = kr;
  d->kept_cols = kc;
  d->w = malloc((kr * kc != 0 ? kr * kc : 1) * sizeof(float));
  if (d->w == NULL) goto oom;
  if (!drop_zero_lines) {
    memcpy(d->w, w, m * k * sizeof(float));
  } else {
    for (size_t i = 0; i < kr; i++)
      for (size_t j = 0; j < kc; j++) d->w[i * kc + j] = w[(size_t)d->row_map[i] * k + d->col_map[j]];
  }
  free(row_nz);
  free(col_nz);
  mat->nnz = kr * kc;
  mat->packed_bytes = kr * kc * sizeof(float) + (drop_zero_lines ? (kr + kc) * sizeof(uint32_t) : 0);
  *out = mat;
  return SPARROW_OK;
oom:
  free(row_nz);
  free(col_nz);
  sparrow_matrix_free(mat);
  return sparrow_fail(SPARROW_ERR_OUT_OF_MEMORY, "out of memory packing");
}

/* GEMM: panels of mr rows (dense/gemm/gemm.h); W row-major M x K with leading dimension k. */
static sparrow_status fill_gemm(sparrow_matrix* mat, const float* w, uint32_t mr) {
  const size_t m = mat->m, k = mat->k, panels = sparrow_div_up(m, mr);
  size_t floats;
  if (!sparrow_mul_ok(panels * mr, k, &floats) || floats > SIZE_MAX / sizeof(float) - SPARROW_GEMM_PAD)
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "matrix %zu x %zu is too large", m, k);
  float* p = calloc(floats + SPARROW_GEMM_PAD, sizeof(float));
  if (p == NULL) return sparrow_fail(SPARROW_ERR_OUT_OF_MEMORY, "out of memory packing dense panels");
  for (size_t r = 0; r < m; r++)
    for (size_t j = 0; j < k; j++) p[((r / mr) * k + j) * mr + r % mr] = w[r * k + j];
  free(mat->u.gemm.w);
  mat->u.gemm.w = p;
  mat->u.gemm.mr = mr;
  mat->u.gemm.panels = panels;
  mat->nnz = m * k;
  mat->packed_bytes = (floats + SPARROW_GEMM_PAD) * sizeof(float);
  return SPARROW_OK;
}

static sparrow_status pack_gemm(const float* w, size_t m, size_t k, sparrow_matrix** out) {
  sparrow_matrix* mat = sparrow_matrix_alloc(SPARROW_FORMAT_GEMM, m, k);
  if (mat == NULL) return sparrow_fail(SPARROW_ERR_OUT_OF_MEMORY, "out of memory packing");
  const sparrow_status st = fill_gemm(mat, w, sparrow_gemm_auto_mr());
  if (st != SPARROW_OK) {
    sparrow_matrix_free(mat);
    return st;
  }
  *out = mat;
  return SPARROW_OK;
}

sparrow_status sparrow_gemm_repack(sparrow_matrix* mat, uint32_t mr) {
  if (mat->u.gemm.mr == mr) return SPARROW_OK;
  float* dense = malloc(mat->m * mat->k * sizeof(float));
  if (dense == NULL) return sparrow_fail(SPARROW_ERR_OUT_OF_MEMORY, "out of memory repacking dense panels");
  sparrow_matrix_to_dense(mat, dense);
  const sparrow_status st = fill_gemm(mat, dense, mr);
  free(dense);
  return st;
}

sparrow_status sparrow_pack(const float* w, size_t m, size_t k, sparrow_format format,
                            const sparrow_pack_params* params, sparrow_matrix** out) {
  sparrow_clear_error();
  if (out == NULL || w == NULL) return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "NULL argument");
  *out = NULL;
  sparrow_status st = sparrow_check_dims(m, k);
  if (st != SPARROW_OK) return st;
  switch (format) {
    case SPARROW_FORMAT_DENSE: return sparrow_bound(pack_dense(w, m, k, 0, out), out);
    case SPARROW_FORMAT_CHANNEL: return sparrow_bound(pack_dense(w, m, k, 1, out), out);
    case SPARROW_FORMAT_CSR: return sparrow_bound(pack_csr(w, m, k, out), out);
    case SPARROW_FORMAT_NM: return sparrow_bound(pack_nm(w, m, k, params, out), out);
    case SPARROW_FORMAT_BSR: return sparrow_bound(pack_bsr(w, m, k, params, out), out);
    case SPARROW_FORMAT_GEMM: return sparrow_bound(pack_gemm(w, m, k, out), out);
  }
  return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "unknown format %d", (int)format);
}

void sparrow_nm_share(sparrow_matrix* mat) {
  sparrow_nm* s = &mat->u.nm;
  const size_t R = SPARROW_NM_SHARED_ROWS, n = s->n, G = s->groups, M = mat->m, K = mat->k;
  const size_t blocks = (M + R - 1) / R;
  uint8_t* idx = malloc(blocks * G * n);
  float* val = calloc(blocks * G * n * R, sizeof(float));
  if (idx == NULL || val == NULL) goto unshared;
  for (size_t b = 0; b < blocks; b++)
    for (size_t g = 0; g < G; g++) {
      uint32_t used = 0;
      for (size_t r = b * R; r < M && r < b * R + R; r++)
        for (size_t q = 0; q < n; q++)
          if (s->values[(r * G + g) * n + q] != 0.0f) used |= 1u << s->idx[(r * G + g) * n + q];
      size_t cnt = (size_t)__builtin_popcount(used);
      if (cnt > n) goto unshared;
      /* Padding as pack_nm: free positions inside K first, past K only when none is left. */
      for (size_t q = 0; q < s->m && cnt < n; q++)
        if (!(used & (1u << q)) && sparrow_nm_col(g, q, s->m, s->stride) < K) used |= 1u << q, cnt++;
      for (size_t q = 0; q < s->m && cnt < n; q++)
        if (!(used & (1u << q))) used |= 1u << q, cnt++;
      uint8_t* ix = idx + (b * G + g) * n;
      size_t t = 0;
      for (size_t q = 0; q < s->m && t < n; q++)
        if (used & (1u << q)) ix[t++] = (uint8_t)q;
      for (size_t r = b * R; r < M && r < b * R + R; r++)
        for (size_t q = 0; q < n; q++) {
          const float v = s->values[(r * G + g) * n + q];
          if (v == 0.0f) continue;
          size_t j = 0;
          while (ix[j] != s->idx[(r * G + g) * n + q]) j++;
          val[((b * G + g) * n + j) * R + (r - b * R)] = v;
        }
    }
  s->shared_rows = (uint32_t)R;
  s->shared_idx = idx;
  s->shared_values = val;
  mat->packed_bytes += blocks * G * n * (R * sizeof(float) + 1);
  return;
unshared:
  free(idx);
  free(val);
}

/* Shared with import.c. */
sparrow_status sparrow_nm_alloc(size_t m, size_t k, const sparrow_pack_params* p, size_t groups,
                                sparrow_matrix** out) {
  return alloc_nm(m, k, p, groups, out);
}
sparrow_status sparrow_bsr_alloc(size_t m, size_t k, size_t r, size_t c, size_t nblocks,
                                 sparrow_matrix** out) {
  return alloc_bsr(m, k, r, c, nblocks, out);
}
