/* int8 GEMM kernels (public contract: include/sparrow_qgemm.h).
 *
 * Layouts. KQ = ceil(K / 4).
 *   W packed in panels of MR rows: byte j of group q of row i of panel p at
 *     wp[((p * KQ + q) * MR + i) * 4 + j] = W[p * MR + i][4 q + j]
 *   (0 past K and past M): per k group, one 4-byte word per row, what vpdpbusd / sdot broadcast.
 *   X packed: xp[(q * LDX + n) * 4 + j] = X[4 q + j][n] (0 past K), LDX = N rounded up to 16
 *   (sparrow_qgemm_ldx; the pad columns hold 0): the 4 k of a column in one 32-bit lane, LDX
 *   lanes per group row, each row 64-byte aligned when xp is. No kernel reads past the end of
 *   either.
 *
 * Kernels: void fn(wp, kq, m, p0, p1, xp, n, epilogue): panels [p0, p1), every column. Each
 * computes its accumulators, then hands rows of int32 to the epilogue of its ISA; the scalar
 * epilogue below is the definition (the SIMD ones compute the same float operations). */
#ifndef SPARROW_QGEMM_INTERNAL_H
#define SPARROW_QGEMM_INTERNAL_H
#include <math.h>

#include "sparrow_qgemm.h"

/* The "w16" layout (kernels listed with 2 bytes per weight): the same indices, int16 elements
 * (sparrow_qgemm_pack_w16), so an AVX2 kernel loads a row's 4 weights ready for vpmaddwd. */
void sparrow_qgemm_pack_w16(const int8_t* w, size_t m, size_t k, ptrdiff_t m_stride, ptrdiff_t k_stride, uint32_t mr,
                            int16_t* out, int32_t* row_sums);

typedef void (*sparrow_qgemm_fn)(const int8_t* wp, size_t kq, size_t m, size_t p0, size_t p1, const uint8_t* xp,
                                 size_t n, const sparrow_qgemm_epilogue* e);

/* Columns per k group row of packed X (the public sparrow_qgemm_x_stride). */
static inline size_t sparrow_qgemm_ldx(size_t n) { return (n + 15) & ~(size_t)15; }

/* Word (4 bytes) loads without alignment or aliasing assumptions. */
static inline int32_t sparrow_qgemm_word(const void* p) {
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return v;
}

/* Column `col` of packed X (row stride ldx columns) as its kq words, the 4 k of each group: what
 * the AVX-512 VNNI kernels multiply the last 1-2 columns past whole 16-column blocks with, for
 * kq up to SPARROW_QGEMM_REM_KQ (their stack copies: 8 KiB a column). */
#define SPARROW_QGEMM_REM_KQ 2048
static inline void sparrow_qgemm_x_column(const uint8_t* xp, size_t ldx, size_t kq, size_t col, int32_t* out) {
  for (size_t q = 0; q < kq; q++) out[q] = sparrow_qgemm_word(xp + (q * ldx + col) * 4);
}

/* Padded extents of the input window a convolution's outputs read, as the tap-major planes
 * (sparrow_qgemm_pack_conv_c4_planes) hold it: rows, and columns per each of the sw phases. */
static inline void sparrow_qgemm_c4_extents(size_t kh, size_t kw, size_t sh, size_t sw, size_t dh, size_t dw, size_t ho,
                                            size_t wo, size_t* hp, size_t* wq) {
  *hp = (ho - 1) * sh + (kh - 1) * dh + 1;
  const size_t wp = (wo - 1) * sw + (kw - 1) * dw + 1;
  *wq = (wp + sw - 1) / sw;
}

/* The epilogue of one output: row m, column n, accumulator acc (before the zero-point term). */
static inline void sparrow_qgemm_store1(const sparrow_qgemm_epilogue* e, size_t m, size_t n, int32_t acc) {
  int32_t c = (int32_t)((uint32_t)acc - (uint32_t)e->x_zero * (uint32_t)e->row_sums[m]);
  if (e->bias != NULL) c = (int32_t)((uint32_t)c + (uint32_t)e->bias[m]);
  const ptrdiff_t at = (ptrdiff_t)m * e->y_row_stride + (ptrdiff_t)n * e->y_col_stride;
  float v = (float)c * e->scale[m];
  if (e->out == SPARROW_QOUT_F32) {
    if (e->fbias != NULL) v += e->fbias[m];
    v = v < e->lo ? e->lo : v;
    v = v > e->hi ? e->hi : v;
    ((float*)e->y)[at] = v;
    return;
  }
  const float lo = (float)(e->q_lo - e->y_zero), hi = (float)(e->q_hi - e->y_zero);
  v = v < lo ? lo : v;
  v = v > hi ? hi : v;
  const int32_t q = (int32_t)nearbyintf(v) + e->y_zero;
  if (e->out == SPARROW_QOUT_U8)
    ((uint8_t*)e->y)[at] = (uint8_t)q;
  else
    ((int8_t*)e->y)[at] = (int8_t)q;
}

/* The epilogue of `count` consecutive columns of row m from n0 (scalar). */
static inline void sparrow_qgemm_store_row(const sparrow_qgemm_epilogue* e, size_t m, size_t n0, const int32_t* acc,
                                           size_t count) {
  for (size_t j = 0; j < count; j++) sparrow_qgemm_store1(e, m, n0 + j, acc[j]);
}
#endif
