/* The dispatcher: every kernel list as a table, the choice of kernel per matrix (bound once,
 * when it is packed; sparrow_matrix_force_kernel rebinds), the depthwise row kernel per ISA and
 * the ISA helpers. cpu/cpu.c probes the CPU; this is the only reader of its answer. */
#include <pthread.h>

#include "../common/error.h"
#include "dispatch.h"
#include "../pack/pack-common.h"

/* ---- SpMM: spmm/ukernels.inc --------------------------------------------------------------- */

#define SPARROW_UKERNEL(fn, FORMAT, ISA, br, bc, mask, win)                                      \
  void fn(const sparrow_matrix* w, const uint32_t* units, size_t u0, size_t u1,               \
          const sparrow_ukernel_args* a);
#include "../spmm/ukernels.inc"
#undef SPARROW_UKERNEL

typedef struct sparrow_spmm_kernel entry;

/* "sparrow_spmm_csr_f32_1x4__scalar" is shown without its "sparrow_" prefix. */
#define SPARROW_UKERNEL(fn, FORMAT, ISA, br, bc, mask, win) \
  {{&#fn[8], SPARROW_FORMAT_##FORMAT, SPARROW_ISA_##ISA, br, bc}, fn, NULL, sparrow_spmm_tiles_workspace_bytes, mask, win},
#define SPARROW_WHOLE_KERNEL(name, FORMAT, run, ws) \
  {{#name, SPARROW_FORMAT_##FORMAT, SPARROW_ISA_SCALAR, 0, 0}, NULL, run, ws, 0, 0},
static const entry table[] = {
#include "../spmm/ukernels.inc"
};
#undef SPARROW_UKERNEL
#undef SPARROW_WHOLE_KERNEL

static const size_t table_len = sizeof table / sizeof table[0];

size_t sparrow_ukernel_count(void) { return table_len; }

const sparrow_ukernel_desc* sparrow_ukernel_get(size_t i) { return i < table_len ? &table[i].desc : NULL; }

static int isa_runnable(sparrow_isa isa) { return sparrow_isa_supported(isa); }

/* The ISA levels a choice falls through when a family has no kernel of the one in force:
 * AVX-512 -> AVX2 -> scalar; AVX2 and NEON -> scalar. */
static sparrow_isa isa_below(sparrow_isa isa) {
  return isa == SPARROW_ISA_AVX512 ? SPARROW_ISA_AVX2 : SPARROW_ISA_SCALAR;
}

int sparrow_ukernel_runnable(size_t i) { return i < table_len && isa_runnable(table[i].desc.isa); }

static int fits(const entry* e, sparrow_format format, const sparrow_matrix* w) {
  if (e->desc.format != format) return 0;
  if (format == SPARROW_FORMAT_BSR) {
    if (e->desc.block_rows != 0 && e->desc.block_rows != w->u.bsr.r) return 0;
    if (e->desc.block_cols != 0 && e->desc.block_cols != w->u.bsr.c) return 0;
  }
  if (format == SPARROW_FORMAT_GEMM && e->desc.block_rows != w->u.gemm.mr) return 0;
  if (format == SPARROW_FORMAT_NM && e->desc.isa == SPARROW_ISA_AVX2 &&
      (size_t)w->u.nm.m * w->u.nm.stride * 64 > SPARROW_NM_AVX2_BUF)
    return 0;
  if (format == SPARROW_FORMAT_NM && e->desc.isa == SPARROW_ISA_AVX512 && e->desc.block_rows == 0 &&
      (size_t)w->u.nm.m * w->u.nm.stride * 128 > SPARROW_NM_AVX512_BUF)
    return 0;
  /* N:M block_rows R: the kernel needs the pattern shared by blocks of R rows (formats.h). */
  if (format == SPARROW_FORMAT_NM && e->desc.block_rows != 0 &&
      (e->desc.block_rows != w->u.nm.shared_rows || (size_t)w->u.nm.m * w->u.nm.stride > SPARROW_NM_SHARED_SPAN_MAX))
    return 0;
  return 1;
}

/* The first entry of `isa` that fits, else of the levels below it (isa_below), else NULL. */
static const entry* choose(sparrow_format format, const sparrow_matrix* w, sparrow_isa isa) {
  for (;;) {
    for (size_t i = 0; i < table_len; i++)
      if (table[i].desc.isa == isa && fits(&table[i], format, w)) return &table[i];
    if (isa == SPARROW_ISA_SCALAR) return NULL;
    isa = isa_below(isa);
  }
}

uint32_t sparrow_gemm_auto_mr(void) {
  sparrow_isa isa = sparrow_active_isa();
  for (;;) {
    for (size_t i = 0; i < table_len; i++)
      if (table[i].desc.isa == isa && table[i].desc.format == SPARROW_FORMAT_GEMM) return table[i].desc.block_rows;
    if (isa == SPARROW_ISA_SCALAR) return 1;
    isa = isa_below(isa);
  }
}

/* N:M under an input-channel list runs as a compacted CSR (parallel/compact.c): with the CSR
 * kernel of the forced kernel's ISA, or the automatic CSR choice. */
static const entry* compact_kernel_for(const sparrow_matrix* w, const entry* forced) {
  if (w->format != SPARROW_FORMAT_NM) return w->kernel;
  if (forced != NULL)
    for (size_t i = 0; i < table_len; i++)
      if (table[i].desc.isa == forced->desc.isa && table[i].desc.format == SPARROW_FORMAT_CSR &&
          table[i].desc.block_rows == 0 && table[i].desc.block_cols == 0)
        return &table[i];
  return choose(SPARROW_FORMAT_CSR, w, sparrow_active_isa());
}

void sparrow_dispatch_bind(sparrow_matrix* w) {
  w->kernel = choose(w->format, w, sparrow_active_isa());
  w->compact_kernel = compact_kernel_for(w, NULL);
}

sparrow_status sparrow_matrix_force_kernel(sparrow_matrix* w, size_t i) {
  sparrow_clear_error();
  if (i == SIZE_MAX) {
    if (w->format == SPARROW_FORMAT_GEMM) {
      const sparrow_status st = sparrow_gemm_repack(w, sparrow_gemm_auto_mr());
      if (st != SPARROW_OK) return st;
    }
    sparrow_dispatch_bind(w);
    return SPARROW_OK;
  }
  if (i >= table_len) return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "no kernel %zu", i);
  /* GEMM panels are packed for the bound kernel's MR: another MR repacks them. */
  if (w->format == SPARROW_FORMAT_GEMM && table[i].desc.format == SPARROW_FORMAT_GEMM && sparrow_ukernel_runnable(i)) {
    const sparrow_status st = sparrow_gemm_repack(w, table[i].desc.block_rows);
    if (st != SPARROW_OK) return st;
  }
  if (!fits(&table[i], w->format, w))
    return sparrow_fail(SPARROW_ERR_INVALID_ARGUMENT, "kernel %s does not fit this matrix", table[i].desc.name);
  if (!sparrow_ukernel_runnable(i))
    return sparrow_fail(SPARROW_ERR_UNSUPPORTED, "kernel %s needs an ISA this CPU lacks", table[i].desc.name);
  w->kernel = &table[i];
  w->compact_kernel = compact_kernel_for(w, &table[i]);
  return SPARROW_OK;
}

int sparrow_spmm_reads_window(const sparrow_matrix* w) { return w != NULL && w->kernel != NULL && w->kernel->reads_window; }

const char* sparrow_kernel_name(const sparrow_matrix* w) { return w->kernel != NULL ? w->kernel->desc.name : "none"; }

/* ---- depthwise rows: conv/dwconv/ukernels.inc ------------------------------------------------ */

typedef struct {
  const char* name;
  sparrow_isa isa;
  sparrow_dwconv_ukernel_fn fn;
} dw_entry;

/* "sparrow_dwconv_f32_1x1__scalar" is shown without its "sparrow_" prefix. */
#define SPARROW_DWCONV_UKERNEL(fn, ISA) {&#fn[8], SPARROW_ISA_##ISA, fn},
static const dw_entry dw_table[] = {
#include "../conv/dwconv/ukernels.inc"
};
#undef SPARROW_DWCONV_UKERNEL
static const size_t dw_len = sizeof dw_table / sizeof dw_table[0];

size_t sparrow_dwconv_ukernel_count(void) { return dw_len; }
const char* sparrow_dwconv_ukernel_name(size_t i) { return i < dw_len ? dw_table[i].name : NULL; }
int sparrow_dwconv_ukernel_runnable(size_t i) { return i < dw_len && isa_runnable(dw_table[i].isa); }

#define ISA_COUNT 4
/* For each ISA level, the first entry of that ISA or of the levels below it, in a table of
 * `len` entries whose ISA is isa_of(table, i) (the depthwise and dense direct-convolution lists;
 * the scalar kernel comes first in each). */
static void resolve_levels(const void* table, size_t len, sparrow_isa (*isa_of)(const void*, size_t),
                           size_t for_isa[ISA_COUNT]) {
  for (size_t level = 0; level < ISA_COUNT; level++) {
    for_isa[level] = 0;
    for (sparrow_isa isa = (sparrow_isa)level;; isa = isa_below(isa)) {
      size_t i = 0;
      while (i < len && isa_of(table, i) != isa) i++;
      if (i < len) {
        for_isa[level] = i;
        break;
      }
      if (isa == SPARROW_ISA_SCALAR) break;
    }
  }
}

static sparrow_isa dw_isa(const void* t, size_t i) { return ((const dw_entry*)t)[i].isa; }
static size_t dw_for_isa[ISA_COUNT];
static pthread_once_t dw_once = PTHREAD_ONCE_INIT;
static void dw_resolve(void) { resolve_levels(dw_table, dw_len, dw_isa, dw_for_isa); }

size_t sparrow_dwconv_ukernel_auto(void) {
  pthread_once(&dw_once, dw_resolve);
  const sparrow_isa isa = sparrow_active_isa();
  return (size_t)isa < ISA_COUNT ? dw_for_isa[isa] : 0;
}

const char* sparrow_dwconv_kernel_name(void) { return dw_table[sparrow_dwconv_ukernel_auto()].name; }

sparrow_dwconv_ukernel_fn sparrow_dwconv_select(size_t i) {
  return dw_table[i < dw_len ? i : sparrow_dwconv_ukernel_auto()].fn;
}

/* ---- dense direct convolution: conv/dconv/ukernels.inc ---------------------------------------- */

typedef struct {
  const char* name;
  sparrow_isa isa;
  sparrow_dconv_ukernel_fn fn;
} dc_entry;

#define SPARROW_DCONV_UKERNEL(fn, ISA) {&#fn[8], SPARROW_ISA_##ISA, fn},
static const dc_entry dc_table[] = {
#include "../conv/dconv/ukernels.inc"
};
#undef SPARROW_DCONV_UKERNEL
static const size_t dc_len = sizeof dc_table / sizeof dc_table[0];

size_t sparrow_dconv_ukernel_count(void) { return dc_len; }
const char* sparrow_dconv_ukernel_name(size_t i) { return i < dc_len ? dc_table[i].name : NULL; }
int sparrow_dconv_ukernel_runnable(size_t i) { return i < dc_len && isa_runnable(dc_table[i].isa); }

static sparrow_isa dc_isa(const void* t, size_t i) { return ((const dc_entry*)t)[i].isa; }
static size_t dc_for_isa[ISA_COUNT];
static pthread_once_t dc_once = PTHREAD_ONCE_INIT;
static void dc_resolve(void) { resolve_levels(dc_table, dc_len, dc_isa, dc_for_isa); }

size_t sparrow_dconv_ukernel_auto(void) {
  pthread_once(&dc_once, dc_resolve);
  const sparrow_isa isa = sparrow_active_isa();
  return (size_t)isa < ISA_COUNT ? dc_for_isa[isa] : 0;
}

sparrow_dconv_ukernel_fn sparrow_dconv_select(size_t i) {
  return dc_table[i < dc_len ? i : sparrow_dconv_ukernel_auto()].fn;
}

/* ---- pixel-major dense direct convolution: conv/dconv/pukernels.inc ---------------------------- */

typedef struct {
  const char* name;
  sparrow_isa isa;
  sparrow_pconv_ukernel_fn fn;
  sparrow_pconv_wide_fn pair, quad; /* NULL: one panel per call */
} pc_entry;

#define SPARROW_PCONV_UKERNEL(fn, ISA) {&#fn[8], SPARROW_ISA_##ISA, fn, NULL, NULL},
#define SPARROW_PCONV_WIDE(quad, pair, single, ISA) {&#quad[8], SPARROW_ISA_##ISA, single, pair, quad},
static const pc_entry pc_table[] = {
#include "../conv/dconv/pukernels.inc"
};
#undef SPARROW_PCONV_UKERNEL
#undef SPARROW_PCONV_WIDE
static const size_t pc_len = sizeof pc_table / sizeof pc_table[0];

size_t sparrow_pconv_ukernel_count(void) { return pc_len; }
const char* sparrow_pconv_ukernel_name(size_t i) { return i < pc_len ? pc_table[i].name : NULL; }
int sparrow_pconv_ukernel_runnable(size_t i) { return i < pc_len && isa_runnable(pc_table[i].isa); }

static sparrow_isa pc_isa(const void* t, size_t i) { return ((const pc_entry*)t)[i].isa; }
static size_t pc_for_isa[ISA_COUNT];
static pthread_once_t pc_once = PTHREAD_ONCE_INIT;
static void pc_resolve(void) { resolve_levels(pc_table, pc_len, pc_isa, pc_for_isa); }

size_t sparrow_pconv_ukernel_auto(void) {
  pthread_once(&pc_once, pc_resolve);
  const sparrow_isa isa = sparrow_active_isa();
  return (size_t)isa < ISA_COUNT ? pc_for_isa[isa] : 0;
}

sparrow_pconv_ukernel_fn sparrow_pconv_select(size_t i) {
  return pc_table[i < pc_len ? i : sparrow_pconv_ukernel_auto()].fn;
}

sparrow_pconv_wide_fn sparrow_pconv_select_wide(size_t i, size_t panels) {
  const pc_entry* e = &pc_table[i < pc_len ? i : sparrow_pconv_ukernel_auto()];
  return panels == 4 ? e->quad : panels == 2 ? e->pair : NULL;
}

/* ---- row-wise kernels: rowwise/ukernels.inc --------------------------------------------------- */

typedef struct {
  const char* name;
  sparrow_row_op op;
  sparrow_isa isa;
  sparrow_row_generic_fn fn;
} row_entry;

/* "sparrow_softmax_f32_1x1__scalar" is shown without its "sparrow_" prefix. */
#define SPARROW_ROW_UKERNEL(fn, OP, ISA) {&#fn[8], SPARROW_ROW_##OP, SPARROW_ISA_##ISA, (sparrow_row_generic_fn)fn},
static const row_entry row_table[] = {
#include "../rowwise/ukernels.inc"
};
#undef SPARROW_ROW_UKERNEL
static const size_t row_len = sizeof row_table / sizeof row_table[0];
#define ROW_OPS 4

size_t sparrow_row_ukernel_count(void) { return row_len; }
const char* sparrow_row_ukernel_name(size_t i) { return i < row_len ? row_table[i].name : NULL; }
int sparrow_row_ukernel_op(size_t i) { return i < row_len ? (int)row_table[i].op : -1; }
int sparrow_row_ukernel_runnable(size_t i) { return i < row_len && isa_runnable(row_table[i].isa); }

/* Per ISA and op, the first entry of that ISA, else of the levels below it (isa_below: AVX-512
 * falls back to the AVX2 entry, not to scalar), else the op's scalar entry (first in the list). */
static size_t row_for[ISA_COUNT][ROW_OPS];
static pthread_once_t row_once = PTHREAD_ONCE_INIT;
static void row_resolve(void) {
  for (size_t op = 0; op < ROW_OPS; op++) {
    size_t scalar = 0;
    for (size_t i = 0; i < row_len; i++)
      if (row_table[i].op == (sparrow_row_op)op && row_table[i].isa == SPARROW_ISA_SCALAR) {
        scalar = i;
        break;
      }
    for (size_t level = 0; level < ISA_COUNT; level++) {
      row_for[level][op] = scalar;
      for (sparrow_isa isa = (sparrow_isa)level;; isa = isa_below(isa)) {
        size_t i = 0;
        while (i < row_len && !(row_table[i].op == (sparrow_row_op)op && row_table[i].isa == isa)) i++;
        if (i < row_len) {
          row_for[level][op] = i;
          break;
        }
        if (isa == SPARROW_ISA_SCALAR) break;
      }
    }
  }
}

size_t sparrow_row_ukernel_auto(sparrow_row_op op) {
  pthread_once(&row_once, row_resolve);
  const sparrow_isa isa = sparrow_active_isa();
  return (size_t)isa < ISA_COUNT && (size_t)op < ROW_OPS ? row_for[isa][op] : 0;
}

sparrow_row_generic_fn sparrow_row_select(sparrow_row_op op, size_t i) {
  if (i < row_len && row_table[i].op == op && isa_runnable(row_table[i].isa)) return row_table[i].fn;
  return row_table[sparrow_row_ukernel_auto(op)].fn;
}

/* ---- ISA helpers ------------------------------------------------------------------------------ */

sparrow_even_fn sparrow_dispatch_even(void) {
#if defined(__x86_64__)
  const sparrow_isa isa = sparrow_active_isa();
  if (isa == SPARROW_ISA_AVX2 || isa == SPARROW_ISA_AVX512) return sparrow_even_f32__avx2;
#endif
  return sparrow_even_f32__scalar;
}

sparrow_split2_fn sparrow_dispatch_split2(void) {
#if defined(__x86_64__)
  const sparrow_isa isa = sparrow_active_isa();
  if (isa == SPARROW_ISA_AVX512) return sparrow_split2_f32__avx512f;
  if (isa == SPARROW_ISA_AVX2) return sparrow_split2_f32__avx2;
#endif
#if defined(__aarch64__)
  if (sparrow_active_isa() == SPARROW_ISA_NEON) return sparrow_split2_f32__neon;
#endif
  return sparrow_split2_f32__scalar;
}

sparrow_pool2_fn sparrow_dispatch_pool2(void) {
#if defined(__x86_64__)
  const sparrow_isa isa = sparrow_active_isa();
  if (isa == SPARROW_ISA_AVX512) return sparrow_pool2_f32__avx512f;
  if (isa == SPARROW_ISA_AVX2) return sparrow_pool2_f32__avx2;
#endif
  return sparrow_pool2_f32__scalar;
}

sparrow_transpose_fn sparrow_dispatch_transpose(void) {
#if defined(__x86_64__)
  /* AVX-512 is a level above AVX2: it runs the AVX2 transpose (it fell to scalar before). */
  const sparrow_isa isa = sparrow_active_isa();
  if (isa == SPARROW_ISA_AVX2 || isa == SPARROW_ISA_AVX512) return sparrow_transpose_f32__avx2;
#elif defined(__aarch64__)
  if (sparrow_active_isa() == SPARROW_ISA_NEON) return sparrow_transpose_f32__neon;
#endif
  return sparrow_transpose_f32__scalar;
}
