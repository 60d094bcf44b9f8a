/* Direct int8 convolution, AVX-512 VNNI (layouts: qconv.h): 64 output channels x 6 output
 * positions per tile. Per tap and group of 4 input channels: four 64-byte loads of the panel's
 * weights (16 channels x 4 k each) and, per position, its word of the planes broadcast into
 * four vpdpbusd: 24 accumulators, 24 multiplies per 4 weight and 6 word loads. Nothing is
 * unfolded: the planes are read where they lie (a word load never splits a cache line).
 *
 * The accumulators hold 16 channels of one position each; the epilogue requantizes them per
 * lane (the scales and sums are per channel), narrows to bytes and transposes 8 positions x 16
 * channels so that each channel's run of positions is one masked store into its output row.
 * Float outputs, or a column stride other than 1, go through the scalar epilogue. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "../qgemm/epilogue-avx512.h"
#include "qconv.h"

#define MR 64
#define NP 6

/* Requantize 16 channels (from row0, `valid` <= 16 of them) of np positions from n0, and store. */
T static inline __attribute__((always_inline)) void store_tile16(const sparrow_qgemm_epilogue* e, size_t row0,
                                                                 size_t valid, size_t n0, const int np,
                                                                 const __m512i* acc /* [np] */) {
  const __mmask16 vm = (__mmask16)(valid >= 16 ? 0xFFFFu : (1u << valid) - 1);
  if (e->out == SPARROW_QOUT_F32 || e->y_col_stride != 1) {
    for (int j = 0; j < np; j++) {
      int32_t a[16];
      _mm512_storeu_si512(a, acc[j]);
      for (size_t i = 0; i < valid; i++) sparrow_qgemm_store1(e, row0 + i, n0 + (size_t)j, a[i]);
    }
    return;
  }
  const __m512i sums = _mm512_maskz_loadu_epi32(vm, e->row_sums + row0);
  __m512i off = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_mullo_epi32(_mm512_set1_epi32(e->x_zero), sums));
  if (e->bias != NULL) off = _mm512_add_epi32(off, _mm512_maskz_loadu_epi32(vm, e->bias + row0));
  const __m512 scale = _mm512_maskz_loadu_ps(vm, e->scale + row0);
  const __m512 lo = _mm512_set1_ps((float)(e->q_lo - e->y_zero)), hi = _mm512_set1_ps((float)(e->q_hi - e->y_zero));
  const __m512i zero = _mm512_set1_epi32(e->y_zero);
  __m128i b[8];
  for (int j = 0; j < 8; j++) {
    if (j >= np) {
      b[j] = _mm_setzero_si128();
      continue;
    }
    __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(acc[j], off)), scale);
    v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
    /* Round to nearest, ties to even (MXCSR's default, as nearbyintf); values are in range. */
    b[j] = _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(v), zero));
  }
  /* 8 positions x 16 channels of bytes -> per channel, 8 positions in one 64-bit half. */
  const __m128i t0 = _mm_unpacklo_epi8(b[0], b[1]), t1 = _mm_unpackhi_epi8(b[0], b[1]);
  const __m128i t2 = _mm_unpacklo_epi8(b[2], b[3]), t3 = _mm_unpackhi_epi8(b[2], b[3]);
  const __m128i t4 = _mm_unpacklo_epi8(b[4], b[5]), t5 = _mm_unpackhi_epi8(b[4], b[5]);
  const __m128i t6 = _mm_unpacklo_epi8(b[6], b[7]), t7 = _mm_unpackhi_epi8(b[6], b[7]);
  const __m128i u0 = _mm_unpacklo_epi16(t0, t2), u1 = _mm_unpackhi_epi16(t0, t2);
  const __m128i u2 = _mm_unpacklo_epi16(t1, t3), u3 = _mm_unpackhi_epi16(t1, t3);
  const __m128i u4 = _mm_unpacklo_epi16(t4, t6), u5 = _mm_unpackhi_epi16(t4, t6);
  const __m128i u6 = _mm_unpacklo_epi16(t5, t7), u7 = _mm_unpackhi_epi16(t5, t7);
  /* ch[2 i], ch[2 i + 1] in the low and high halves of c[i]. */
  const __m128i c[8] = {_mm_unpacklo_epi32(u0, u4), _mm_unpackhi_epi32(u0, u4), _mm_unpacklo_epi32(u1, u5),
                        _mm_unpackhi_epi32(u1, u5), _mm_unpacklo_epi32(u2, u6), _mm_unpackhi_epi32(u2, u6),
                        _mm_unpacklo_epi32(u3, u7), _mm_unpackhi_epi32(u3, u7)};
  const __mmask16 pm = (__mmask16)((1u << np) - 1);
  uint8_t* y = (uint8_t*)e->y + (ptrdiff_t)row0 * e->y_row_stride + (ptrdiff_t)n0;
  for (size_t i = 0; i < valid; i++) {
    /* Odd channels: their high half moved down first. */
    const __m128i ci = i % 2 == 0 ? c[i / 2] : _mm_srli_si128(c[i / 2], 8);
    _mm_mask_storeu_epi8(y + (ptrdiff_t)i * e->y_row_stride, pm, ci);
  }
}

/* One tile: panel rows from row0 (`rows` of them), positions n0 .. n0 + np - 1. */
T static inline __attribute__((always_inline)) void tile(const int8_t* w, const sparrow_qconv_geometry* g, size_t rows,
                                                         size_t row0, size_t n0, const int np,
                                                         const sparrow_qgemm_epilogue* e) {
  __m512i acc[NP][4];
  for (int j = 0; j < np; j++)
    for (int v = 0; v < 4; v++) acc[j][v] = _mm512_setzero_si512();
  size_t word[NP];
  for (int j = 0; j < np; j++) word[j] = sparrow_qconv_word(g, n0 + (size_t)j);
  const size_t gs = g->group_words * 4;
  for (size_t t = 0; t < g->taps; t++) {
    const uint8_t* x[NP];
    for (int j = 0; j < np; j++) x[j] = g->planes + (word[j] + g->tap_words[t]) * 4;
    for (size_t c = 0, o = 0; c < g->cq; c++, o += gs, w += MR * 4) {
      __m512i wv[4];
      for (int v = 0; v < 4; v++) wv[v] = _mm512_loadu_si512(w + 64 * v);
      for (int j = 0; j < np; j++) {
        const __m512i xb = _mm512_set1_epi32(sparrow_qgemm_word(x[j] + o));
        for (int v = 0; v < 4; v++) acc[j][v] = _mm512_dpbusd_epi32(acc[j][v], xb, wv[v]);
      }
    }
  }
  /* Copied out per vector with constant indices, so the accumulators stay in registers in the
   * loop above (indexed by a loop variable here, they were spilled after every vpdpbusd: half
   * speed). */
#define STORE(v)                                                                              \
  if (rows > 16 * (v)) {                                                                      \
    __m512i a[NP];                                                                            \
    for (int j = 0; j < np; j++) a[j] = acc[j][v];                                            \
    store_tile16(e, row0 + 16 * (v), rows - 16 * (v) < 16 ? rows - 16 * (v) : 16, n0, np, a); \
  }
  STORE(0)
  STORE(1)
  STORE(2)
  STORE(3)
#undef STORE
}

T void sparrow_qconv_u8s8_64x6__avx512vnni(const int8_t* wp, size_t m, size_t p0, size_t p1,
                                           const sparrow_qconv_geometry* g, size_t n0, size_t n1,
                                           const sparrow_qgemm_epilogue* e) {
  const size_t kq = g->taps * g->cq;
  for (size_t p = p0; p < p1; p++) {
    const int8_t* w = wp + p * kq * MR * 4;
    const size_t rows = m - p * MR < MR ? m - p * MR : MR;
    size_t n = n0;
    for (; n + NP <= n1; n += NP) tile(w, g, rows, p * MR, n, NP, e);
    switch (n1 - n) {
      case 5:
        tile(w, g, rows, p * MR, n, 5, e);
        break;
      case 4:
        tile(w, g, rows, p * MR, n, 4, e);
        break;
      case 3:
        tile(w, g, rows, p * MR, n, 3, e);
        break;
      case 2:
        tile(w, g, rows, p * MR, n, 2, e);
        break;
      case 1:
        tile(w, g, rows, p * MR, n, 1, e);
        break;
      default:
        break;
    }
  }
}
#endif
