/* The int8 GEMM list (qgemm/ukernels.inc) as a table, and its choice under the active ISA: part
 * of the one dispatcher (dispatch.c holds the other families). */
#include "../qgemm/qgemm.h"
#include "../qelem/qelem.h"
#include "../qgemm/interleave.h"
#include "../qspmm/qspmm.h"
#include "../qconv/qconv.h"
#include "sparrow_kernels.h"

#define SPARROW_QGEMM_UKERNEL(fn, ISA, FEATURE, mr, wb)                                             \
  void fn(const int8_t* wp, size_t kq, size_t m, size_t p0, size_t p1, const uint8_t* xp, size_t n, \
          const sparrow_qgemm_epilogue* e);
#include "../qgemm/ukernels.inc"
#undef SPARROW_QGEMM_UKERNEL

typedef struct {
  const char* name;
  sparrow_isa isa;
  sparrow_cpu_feature_id feature;
  uint32_t mr;
  uint32_t wbytes;
  sparrow_qgemm_fn fn;
} q_entry;

/* "sparrow_qgemm_u8s8_4x1__scalar" is shown without its "sparrow_" prefix. */
#define SPARROW_QGEMM_UKERNEL(fn, ISA, FEATURE, mr, wb) {&#fn[8], SPARROW_ISA_##ISA, SPARROW_CPU_##FEATURE, mr, wb, fn},
static const q_entry q_table[] = {
#include "../qgemm/ukernels.inc"
};
#undef SPARROW_QGEMM_UKERNEL
static const size_t q_len = sizeof q_table / sizeof q_table[0];

size_t sparrow_qgemm_count(void) { return q_len; }
const char* sparrow_qgemm_name(size_t i) { return i < q_len ? q_table[i].name : NULL; }
uint32_t sparrow_qgemm_mr(size_t i) { return i < q_len ? q_table[i].mr : 0; }

/* Entry i's packed weights: int8 (sparrow_qgemm_pack_w) or widened to int16 (the w16 layout). */
size_t sparrow_qgemm_kernel_packed_bytes(size_t i, size_t m, size_t k) {
  const q_entry* q = &q_table[i < q_len ? i : 0];
  return sparrow_qgemm_packed_bytes(m, k, q->mr) * q->wbytes;
}

void sparrow_qgemm_kernel_pack_w(size_t i, const int8_t* w, size_t m, size_t k, ptrdiff_t m_stride, ptrdiff_t k_stride,
                                 void* out, int32_t* row_sums) {
  const q_entry* q = &q_table[i < q_len ? i : 0];
  if (q->wbytes == 2)
    sparrow_qgemm_pack_w16(w, m, k, m_stride, k_stride, q->mr, (int16_t*)out, row_sums);
  else
    sparrow_qgemm_pack_w(w, m, k, m_stride, k_stride, q->mr, (int8_t*)out, row_sums);
}

/* Runnable: the CPU has the entry's ISA and extension. An extension is probed for the level in
 * force only, so an entry needing one runs only under that level. */
int sparrow_qgemm_runnable(size_t i) {
  if (i >= q_len || !sparrow_isa_supported(q_table[i].isa)) return 0;
  return q_table[i].feature == SPARROW_CPU_NONE ||
         (q_table[i].isa == sparrow_active_isa() && sparrow_cpu_feature(q_table[i].feature));
}

/* The last runnable entry of the active level, else of AVX2 (under AVX-512), else scalar (0). */
size_t sparrow_qgemm_auto(void) {
  const sparrow_isa active = sparrow_active_isa();
  const sparrow_isa levels[2] = {active, active == SPARROW_ISA_AVX512 ? SPARROW_ISA_AVX2 : SPARROW_ISA_SCALAR};
  for (size_t l = 0; l < 2; l++) {
    size_t best = q_len;
    for (size_t i = 0; i < q_len; i++)
      if (q_table[i].isa == levels[l] && sparrow_qgemm_runnable(i)) best = i;
    if (best < q_len) return best;
  }
  return 0;
}

void sparrow_qgemm_run(size_t i, const int8_t* wp, size_t m, size_t k, size_t p0, size_t p1, const uint8_t* xp,
                       size_t n, const sparrow_qgemm_epilogue* e) {
  const q_entry* q = &q_table[sparrow_qgemm_runnable(i) ? i : 0];
  q->fn(wp, (k + 3) / 4, m, p0, p1, xp, n, e);
}

/* ---- sparse int8: qspmm/ukernels.inc ----------------------------------------------------------- */

#define SPARROW_QSPMM_UKERNEL(fn, ISA, FEATURE)                                                                        \
  void fn(const uint32_t* row_ptr, const uint32_t* group, const int8_t* word, size_t r0, size_t r1, const uint8_t* xp, \
          size_t n, const sparrow_qgemm_epilogue* e);
#include "../qspmm/ukernels.inc"
#undef SPARROW_QSPMM_UKERNEL

typedef struct {
  const char* name;
  sparrow_isa isa;
  sparrow_cpu_feature_id feature;
  sparrow_qspmm_fn fn;
} s_entry;

#define SPARROW_QSPMM_UKERNEL(fn, ISA, FEATURE) {&#fn[8], SPARROW_ISA_##ISA, SPARROW_CPU_##FEATURE, fn},
static const s_entry s_table[] = {
#include "../qspmm/ukernels.inc"
};
#undef SPARROW_QSPMM_UKERNEL
static const size_t s_len = sizeof s_table / sizeof s_table[0];

size_t sparrow_qspmm_count(void) { return s_len; }
const char* sparrow_qspmm_name(size_t i) { return i < s_len ? s_table[i].name : NULL; }

int sparrow_qspmm_runnable(size_t i) {
  if (i >= s_len || !sparrow_isa_supported(s_table[i].isa)) return 0;
  return s_table[i].feature == SPARROW_CPU_NONE ||
         (s_table[i].isa == sparrow_active_isa() && sparrow_cpu_feature(s_table[i].feature));
}

size_t sparrow_qspmm_auto(void) {
  const sparrow_isa active = sparrow_active_isa();
  const sparrow_isa levels[2] = {active, active == SPARROW_ISA_AVX512 ? SPARROW_ISA_AVX2 : SPARROW_ISA_SCALAR};
  for (size_t l = 0; l < 2; l++) {
    size_t best = s_len;
    for (size_t i = 0; i < s_len; i++)
      if (s_table[i].isa == levels[l] && sparrow_qspmm_runnable(i)) best = i;
    if (best < s_len) return best;
  }
  return 0;
}

void sparrow_qspmm_run(size_t i, const uint32_t* row_ptr, const uint32_t* group, const int8_t* word, size_t r0,
                       size_t r1, const uint8_t* xp, size_t n, const sparrow_qgemm_epilogue* e) {
  s_table[sparrow_qspmm_runnable(i) ? i : 0].fn(row_ptr, group, word, r0, r1, xp, n, e);
}

/* ---- quantized element-wise: qelem/ukernels.inc ------------------------------------------------ */

#define SPARROW_QELEM_UKERNEL(fn, OP, ISA) \
  void fn(size_t n, const void* a, const void* b, const sparrow_qelem_params* p, void* y);
#include "../qelem/ukernels.inc"
#undef SPARROW_QELEM_UKERNEL

typedef struct {
  const char* name;
  int op;
  sparrow_isa isa;
  sparrow_qelem_fn fn;
} e_entry;

#define SPARROW_QELEM_UKERNEL(fn, OP, ISA) {&#fn[8], SPARROW_QELEM_##OP, SPARROW_ISA_##ISA, fn},
static const e_entry e_table[] = {
#include "../qelem/ukernels.inc"
};
#undef SPARROW_QELEM_UKERNEL
static const size_t e_len = sizeof e_table / sizeof e_table[0];

size_t sparrow_qelem_count(void) { return e_len; }
const char* sparrow_qelem_name(size_t i) { return i < e_len ? e_table[i].name : NULL; }
int sparrow_qelem_op(size_t i) { return i < e_len ? e_table[i].op : -1; }
int sparrow_qelem_runnable(size_t i) { return i < e_len && sparrow_isa_supported(e_table[i].isa); }

/* The first entry of the op at the active level, else at AVX2 (under AVX-512), else its scalar one. */
size_t sparrow_qelem_auto(int op) {
  const sparrow_isa active = sparrow_active_isa();
  const sparrow_isa levels[3] = {active, active == SPARROW_ISA_AVX512 ? SPARROW_ISA_AVX2 : SPARROW_ISA_SCALAR,
                                 SPARROW_ISA_SCALAR};
  for (size_t l = 0; l < 3; l++)
    for (size_t i = 0; i < e_len; i++)
      if (e_table[i].op == op && e_table[i].isa == levels[l] && sparrow_qelem_runnable(i)) return i;
  return 0;
}

void sparrow_qelem_run(int op, size_t i, size_t n, const void* a, const void* b, const sparrow_qelem_params* p,
                       void* y) {
  if (!(i < e_len && e_table[i].op == op && sparrow_qelem_runnable(i))) i = sparrow_qelem_auto(op);
  e_table[i].fn(n, a, b, p, y);
}

/* ---- the activation packer's interleave step (qgemm/interleave.h) ------------------------------ */

sparrow_interleave4_fn sparrow_dispatch_interleave4(void) {
#if defined(__x86_64__)
  const sparrow_isa isa = sparrow_active_isa();
  if (isa == SPARROW_ISA_AVX2 || isa == SPARROW_ISA_AVX512) return sparrow_interleave_u8_4x16__avx2;
#elif defined(__aarch64__)
  if (sparrow_active_isa() == SPARROW_ISA_NEON) return sparrow_interleave_u8_4x16__neon;
#endif
  return sparrow_interleave_u8_4x1__scalar;
}

/* ---- direct int8 convolution: qconv/ukernels.inc ----------------------------------------------- */

#define SPARROW_QCONV_UKERNEL(fn, ISA, FEATURE, mr)                                                                \
  void fn(const int8_t* wp, size_t m, size_t p0, size_t p1, const sparrow_qconv_geometry* g, size_t n0, size_t n1, \
          const sparrow_qgemm_epilogue* e);
#include "../qconv/ukernels.inc"
#undef SPARROW_QCONV_UKERNEL

typedef struct {
  const char* name;
  sparrow_isa isa;
  sparrow_cpu_feature_id feature;
  uint32_t mr;
  sparrow_qconv_fn fn;
} c_entry;

#define SPARROW_QCONV_UKERNEL(fn, ISA, FEATURE, mr) {&#fn[8], SPARROW_ISA_##ISA, SPARROW_CPU_##FEATURE, mr, fn},
static const c_entry c_table[] = {
#include "../qconv/ukernels.inc"
};
#undef SPARROW_QCONV_UKERNEL
static const size_t c_len = sizeof c_table / sizeof c_table[0];

size_t sparrow_qconv_count(void) { return c_len; }
const char* sparrow_qconv_name(size_t i) { return i < c_len ? c_table[i].name : NULL; }
uint32_t sparrow_qconv_mr(size_t i) { return i < c_len ? c_table[i].mr : 0; }

int sparrow_qconv_runnable(size_t i) {
  if (i >= c_len || !sparrow_isa_supported(c_table[i].isa)) return 0;
  return c_table[i].feature == SPARROW_CPU_NONE ||
         (c_table[i].isa == sparrow_active_isa() && sparrow_cpu_feature(c_table[i].feature));
}

size_t sparrow_qconv_auto(void) {
  const sparrow_isa active = sparrow_active_isa();
  const sparrow_isa levels[2] = {active, active == SPARROW_ISA_AVX512 ? SPARROW_ISA_AVX2 : SPARROW_ISA_SCALAR};
  for (size_t l = 0; l < 2; l++) {
    size_t best = c_len;
    for (size_t i = 0; i < c_len; i++)
      if (c_table[i].isa == levels[l] && sparrow_qconv_runnable(i)) best = i;
    if (best < c_len) return best;
  }
  return 0;
}

/* The planes' word offsets (qconv.h): word (g, r, ph, i) of the planes is at
 * ((g * hp + r) * sw + ph) * wq + i; output (oy, ox) at tap (ky, kx) reads row oy * sh + ky * dh,
 * phase kx * dw % sw, word ox + kx * dw / sw. An entry this CPU does not run writes nothing (its
 * weights are packed for its own panel height): callers pass a runnable entry. */
void sparrow_qconv_run(size_t i, const int8_t* wp, size_t m, size_t c, size_t kh, size_t kw, size_t sh, size_t sw,
                       size_t dh, size_t dw, size_t ho, size_t wo, const uint8_t* work, size_t p0, size_t p1, size_t n0,
                       size_t n1, const sparrow_qgemm_epilogue* e) {
  if (ho == 0 || wo == 0 || c < 4 || kh * kw > SPARROW_QCONV_MAX_TAPS || n0 >= n1 || !sparrow_qconv_runnable(i)) return;
  size_t hp, wq;
  sparrow_qgemm_c4_extents(kh, kw, sh, sw, dh, dw, ho, wo, &hp, &wq);
  sparrow_qconv_geometry g;
  g.planes = work;
  g.cq = c / 4;
  g.taps = kh * kw;
  g.group_words = hp * sw * wq;
  g.wo = wo;
  g.row_words = sh * sw * wq;
  for (size_t ky = 0; ky < kh; ky++)
    for (size_t kx = 0; kx < kw; kx++) g.tap_words[ky * kw + kx] = ky * dh * sw * wq + kx * dw % sw * wq + kx * dw / sw;
  c_table[i].fn(wp, m, p0, p1, &g, n0, n1, e);
}
