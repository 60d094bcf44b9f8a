/* Active input channels for the sparse formats: per call, a compacted copy of the matrix that
 * holds only what the call needs, built in the caller's workspace, so the microkernels run
 * unchanged and the multiply costs in proportion to the active part.
 *
 *   CSR  the nonzeros of active columns (original column numbers, so X is read in place);
 *        rows outside the active output list are left empty.
 *   N:M  the same compacted CSR (groups cannot lose single members and stay N:M); the call
 *        then runs the matrix's compact_kernel, the CSR kernel the dispatcher bound beside the
 *        N:M one when it was packed (same ISA).
 *   BSR  the blocks with at least one active column; a block straddling an inactive channel
 *        keeps its values, and the kernels' k_mask keeps that channel's X rows unread.
 *
 * One pass over the stored values (O(nnz), branch-free copies), small next to the multiply's
 * nnz * n for every n the gate meets except the smallest (7x7 maps); only active output rows
 * are copied. Every array lives in the workspace: sizes in sparrow_compact_bytes. */
#include <string.h>

#include "../pack/formats.h"
#include "../pack/pack-common.h"
#include "../dispatch/dispatch.h"

#define ALIGN64 SPARROW_ALIGN64

static int csr_narrow(size_t k) { return k <= 65536; }

size_t sparrow_compact_bytes(const sparrow_matrix* w) {
  size_t b = ALIGN64(sizeof(sparrow_matrix));
  switch (w->format) {
    case SPARROW_FORMAT_CSR:
    case SPARROW_FORMAT_NM: {
      const size_t nnz = w->format == SPARROW_FORMAT_CSR ? w->nnz : (size_t)w->m * w->u.nm.groups * w->u.nm.n;
      b += ALIGN64((w->m + 1) * sizeof(uint32_t));
      b += ALIGN64(nnz * (csr_narrow(w->k) ? sizeof(uint16_t) : sizeof(uint32_t)));
      b += ALIGN64(nnz * sizeof(float));
      /* N:M along Cin (stride S > 1): one group span of (value, present) slots to sort pairs
       * into column order. */
      if (w->format == SPARROW_FORMAT_NM && w->u.nm.stride > 1)
        b += ALIGN64((size_t)w->u.nm.m * w->u.nm.stride * sizeof(float));
      return b;
    }
    case SPARROW_FORMAT_BSR: {
      const sparrow_bsr* s = &w->u.bsr;
      b += ALIGN64((s->mb + 1) * sizeof(uint32_t));
      b += ALIGN64(s->nblocks * sizeof(uint32_t));
      b += ALIGN64((size_t)s->nblocks * s->r * s->c * sizeof(float));
      return b;
    }
    default:
      return 0;
  }
}

/* Rows (CSR/NM) or block rows (BSR) to copy: units[0..count), or all when units == NULL. */
typedef struct {
  const uint32_t* units;
  size_t count;
} unit_iter;

static size_t unit_at(const unit_iter* it, size_t i) { return it->units != NULL ? it->units[i] : i; }

/* Rows [from, upto) of a row pointer array start at v (rows not copied are empty). */
static void fill_ptr(uint32_t* row_ptr, size_t from, size_t upto, uint32_t v) {
  for (size_t r = from; r < upto; r++) row_ptr[r] = v;
}

#define CSR_COPY(SRC_COL, DST_COL)                                          \
  for (size_t i = 0; i < it->count; i++) {                                  \
    const size_t r = unit_at(it, i);                                        \
    fill_ptr(rp, next_row, r + 1, (uint32_t)q);                             \
    next_row = r + 1;                                                       \
    for (uint32_t p = c->row_ptr[r], p1 = c->row_ptr[r + 1]; p < p1; p++) { \
      const uint32_t col = (SRC_COL)[p];                                    \
      (DST_COL)[q] = col;                                                   \
      vals[q] = c->values[p];                                               \
      q += mask[col];                                                       \
    }                                                                       \
  }

static void compact_csr(const sparrow_matrix* w, const uint8_t* mask, const unit_iter* it, sparrow_matrix* out,
                        uint32_t* rp, void* cols, float* vals) {
  const sparrow_csr* c = &w->u.csr;
  size_t q = 0, next_row = 0;
  if (c->col16 != NULL) {
    uint16_t* dst = cols;
    CSR_COPY(c->col16, dst)
    out->u.csr.col16 = dst;
  } else {
    uint32_t* dst = cols;
    CSR_COPY(c->col32, dst)
    out->u.csr.col32 = dst;
  }
  fill_ptr(rp, next_row, w->m + 1, (uint32_t)q);
  out->nnz = q;
}

/* N:M to CSR, keeping the nonzeros of active columns, in ascending column order (the AVX2 CSR
 * kernel walks a row's nonzeros block by block). Padding pairs (value 0, maybe past K) go. */
static void compact_nm(const sparrow_matrix* w, const uint8_t* mask, const unit_iter* it, sparrow_matrix* out,
                       uint32_t* rp, void* cols, float* vals, float* slots) {
  const sparrow_nm* s = &w->u.nm;
  const size_t G = s->groups, GN = s->n, GM = s->m, S = s->stride, K = w->k;
  const int narrow = csr_narrow(K);
  uint16_t* c16 = narrow ? cols : NULL;
  uint32_t* c32 = narrow ? NULL : cols;
  size_t q = 0, next_row = 0;
#define EMIT(COL, V)                                           \
  do {                                                         \
    const size_t col_ = (COL);                                 \
    if (narrow)                                                \
      c16[q] = (uint16_t)col_;                                 \
    else                                                       \
      c32[q] = (uint32_t)col_;                                 \
    vals[q] = (V);                                             \
    q += (V) != 0.0f && col_ < K && mask[col_ < K ? col_ : 0]; \
  } while (0)
  for (size_t i = 0; i < it->count; i++) {
    const size_t r = unit_at(it, i);
    fill_ptr(rp, next_row, r + 1, (uint32_t)q);
    next_row = r + 1;
    const float* v = s->values + r * G * GN;
    const uint8_t* idx = s->idx + r * G * GN;
    if (S == 1) {
      for (size_t g = 0; g < G; g++)
        for (size_t j = 0; j < GN; j++) EMIT(g * GM + idx[g * GN + j], v[g * GN + j]);
      continue;
    }
    /* Along Cin: the S groups of a span interleave their columns ((cg*m + idx)*S + s); scatter
     * the span's pairs into slots by column, then sweep the slots in order. */
    const size_t span = GM * S;
    for (size_t g0 = 0; g0 < G; g0 += S) {
      memset(slots, 0, span * sizeof(float));
      const size_t base = (g0 / S) * span;
      for (size_t sg = 0; sg < S; sg++)
        for (size_t j = 0; j < GN; j++) {
          const size_t p = (g0 + sg) * GN + j;
          slots[(size_t)idx[p] * S + sg] = v[p]; /* padding pairs hold 0: nothing lost */
        }
      for (size_t t = 0; t < span; t++) {
        if (slots[t] == 0.0f) continue;
        EMIT(base + t, slots[t]);
      }
    }
  }
#undef EMIT
  fill_ptr(rp, next_row, w->m + 1, (uint32_t)q);
  out->format = SPARROW_FORMAT_CSR;
  out->nnz = q;
  memset(&out->u, 0, sizeof out->u);
  out->u.csr.row_ptr = rp;
  if (narrow)
    out->u.csr.col16 = c16;
  else
    out->u.csr.col32 = c32;
  out->u.csr.values = vals;
}

static void compact_bsr(const sparrow_matrix* w, const uint8_t* mask, const unit_iter* it, sparrow_matrix* out,
                        uint32_t* bp, uint32_t* bcol, float* vals) {
  const sparrow_bsr* b = &w->u.bsr;
  const size_t C = b->c, RC = (size_t)b->r * b->c, K = w->k;
  size_t q = 0, next = 0;
  for (size_t i = 0; i < it->count; i++) {
    const size_t br = unit_at(it, i);
    fill_ptr(bp, next, br + 1, (uint32_t)q);
    next = br + 1;
    for (uint32_t blk = b->block_row_ptr[br]; blk < b->block_row_ptr[br + 1]; blk++) {
      const size_t k0 = (size_t)b->block_col[blk] * C, k1 = k0 + C < K ? k0 + C : K;
      uint8_t any = 0;
      for (size_t k = k0; k < k1; k++) any |= mask[k];
      if (!any) continue;
      bcol[q] = b->block_col[blk];
      memcpy(vals + q * RC, b->values + (size_t)blk * RC, RC * sizeof(float));
      q++;
    }
  }
  fill_ptr(bp, next, b->mb + 1, (uint32_t)q);
  out->nnz = q * RC;
  out->u.bsr.nblocks = (uint32_t)q;
  out->u.bsr.block_row_ptr = bp;
  out->u.bsr.block_col = bcol;
  out->u.bsr.values = vals;
}

const sparrow_matrix* sparrow_compact(const sparrow_matrix* w, const uint8_t* mask, const uint32_t* units,
                                      size_t n_units, void* workspace) {
  char* ws = workspace;
  sparrow_matrix* out = (sparrow_matrix*)ws;
  *out = *w;
  ws += ALIGN64(sizeof(sparrow_matrix));
  const unit_iter it = {units, units != NULL ? n_units : (w->format == SPARROW_FORMAT_BSR ? w->u.bsr.mb : w->m)};
  if (w->format == SPARROW_FORMAT_BSR) {
    const sparrow_bsr* b = &w->u.bsr;
    uint32_t* bp = (uint32_t*)ws;
    ws += ALIGN64((b->mb + 1) * sizeof(uint32_t));
    uint32_t* bcol = (uint32_t*)ws;
    ws += ALIGN64(b->nblocks * sizeof(uint32_t));
    compact_bsr(w, mask, &it, out, bp, bcol, (float*)ws);
    return out;
  }
  const size_t nnz = w->format == SPARROW_FORMAT_CSR ? w->nnz : (size_t)w->m * w->u.nm.groups * w->u.nm.n;
  uint32_t* rp = (uint32_t*)ws;
  ws += ALIGN64((w->m + 1) * sizeof(uint32_t));
  void* cols = ws;
  ws += ALIGN64(nnz * (csr_narrow(w->k) ? sizeof(uint16_t) : sizeof(uint32_t)));
  float* vals = (float*)ws;
  ws += ALIGN64(nnz * sizeof(float));
  if (w->format == SPARROW_FORMAT_CSR) {
    out->u.csr.row_ptr = rp;
    out->u.csr.values = vals;
    compact_csr(w, mask, &it, out, rp, cols, vals);
  } else {
    compact_nm(w, mask, &it, out, rp, cols, vals, (float*)ws);
    out->kernel = w->compact_kernel;
  }
  return out;
}
