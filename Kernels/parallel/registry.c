/* The microkernel table built from ukernels.inc, and the choice of kernel per matrix. */
#include "../pack/error.h"
#include "../pack/formats.h"
#include "registry.h"

#define SPARROW_UKERNEL(fn, FORMAT, ISA, br, bc, mask, win)                                      \
  void fn(const sparrow_matrix* w, const uint32_t* units, size_t u0, size_t u1,               \
          const sparrow_ukernel_args* a);
#include "../spmm/ukernels.inc"
#undef SPARROW_UKERNEL

typedef struct {
  sparrow_ukernel_desc desc;
  sparrow_spmm_ukernel_fn fn;
  int honours_mask;
  int reads_window;
} entry;

/* "sparrow_spmm_csr_f32_1x4__scalar" is shown without its "sparrow_" prefix. */
#define SPARROW_UKERNEL(fn, FORMAT, ISA, br, bc, mask, win) \
  {{&#fn[8], SPARROW_FORMAT_##FORMAT, SPARROW_ISA_##ISA, br, bc}, fn, mask, win},
static const entry table[] = {
#include "../spmm/ukernels.inc"
};
#undef SPARROW_UKERNEL

static const size_t table_len = sizeof table / sizeof table[0];

size_t sparrow_ukernel_count(void) { return table_len; }

const sparrow_ukernel_desc* sparrow_ukernel_get(size_t i) { return i < table_len ? &table[i].desc : NULL; }

int sparrow_ukernel_runnable(size_t i) {
  if (i >= table_len) return 0;
  const sparrow_isa isa = table[i].desc.isa;
  return isa == SPARROW_ISA_SCALAR || isa == sparrow_detected_isa();
}

static int fits(const entry* e, const sparrow_matrix* w) {
  if (e->desc.format != w->format) return 0;
  if (w->format == SPARROW_FORMAT_BSR) {
    if (e->desc.block_rows != 0 && e->desc.block_rows != w->u.bsr.r) return 0;
    if (e->desc.block_cols != 0 && e->desc.block_cols != w->u.bsr.c) return 0;
  }
  if (w->format == SPARROW_FORMAT_NM && e->desc.isa == SPARROW_ISA_AVX2 &&
      (size_t)w->u.nm.m * w->u.nm.stride * 64 > SPARROW_NM_AVX2_BUF)
    return 0;
  return 1;
}

sparrow_status sparrow_matrix_force_kernel(sparrow_matrix* w, size_t i) {
  sparrow_clear_error();
  if (i == SIZE_MAX) {
    w->forced_kernel = SIZE_MAX;
    return SPARROW_OK;
  }
  if (i >= table_len) return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "no kernel %zu", i);
  if (!fits(&table[i], w))
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "kernel %s does not fit this matrix", table[i].desc.name);
  if (!sparrow_ukernel_runnable(i))
    return sparrow_fail(SPARROW_ERR_UNSUPPORTED, "kernel %s needs an ISA this CPU lacks", table[i].desc.name);
  w->forced_kernel = i;
  return SPARROW_OK;
}

size_t sparrow_ukernel_same_isa(size_t forced, sparrow_format format) {
  if (forced >= table_len) return SIZE_MAX;
  for (size_t i = 0; i < table_len; i++)
    if (table[i].desc.isa == table[forced].desc.isa && table[i].desc.format == format &&
        table[i].desc.block_rows == 0 && table[i].desc.block_cols == 0)
      return i;
  return SIZE_MAX;
}

static const entry* select_entry(const sparrow_matrix* w) {
  if (w->forced_kernel < table_len) return &table[w->forced_kernel];
  const sparrow_isa isa = sparrow_active_isa();
  for (size_t i = 0; i < table_len; i++)
    if (table[i].desc.isa == isa && fits(&table[i], w)) return &table[i];
  for (size_t i = 0; i < table_len; i++)
    if (table[i].desc.isa == SPARROW_ISA_SCALAR && fits(&table[i], w)) return &table[i];
  return NULL;
}

int sparrow_ukernel_honours_mask(const sparrow_matrix* w) {
  const entry* e = select_entry(w);
  return e != NULL && e->honours_mask;
}

int sparrow_spmm_reads_window(const sparrow_matrix* w) {
  if (w == NULL || w->format == SPARROW_FORMAT_DENSE || w->format == SPARROW_FORMAT_CHANNEL) return 0;
  const entry* e = select_entry(w);
  return e != NULL && e->reads_window;
}

sparrow_spmm_ukernel_fn sparrow_select_ukernel(const sparrow_matrix* w) {
  const entry* e = select_entry(w);
  return e != NULL ? e->fn : NULL;
}

const char* sparrow_kernel_name(const sparrow_matrix* w) {
  if (w->format == SPARROW_FORMAT_DENSE || w->format == SPARROW_FORMAT_CHANNEL) return "openblas_sgemm";
  const entry* e = select_entry(w);
  return e != NULL ? e->desc.name : "none";
}
