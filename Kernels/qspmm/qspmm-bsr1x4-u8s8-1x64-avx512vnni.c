/* Sparse int8 GEMM over 1x4 blocks (qspmm.h), AVX-512 VNNI: one row x up to 64 columns per step,
 * one broadcast of the block's 4 weights and up to four vpdpbusd per block.
 *
 * As the dense kernel: a block of up to 64 columns outside (the 16-column blocks spread evenly
 * over tiles of at most 4, the last of the matrix masked), the rows inside, so every row reads
 * the same K x 64 bytes of X from L1/L2 (row-outer streamed all of X per row). Even and odd
 * blocks of a row go to two sets of accumulators, added at the end: eight dependent chains
 * instead of four (vpdpbusd's latency of ~5 cycles left four chains at less than half its
 * throughput). */
#if defined(__x86_64__)
#include <immintrin.h>

#include "../qgemm/epilogue-avx512.h"
#include "qspmm.h"

T static inline __attribute__((always_inline)) void row_tile(const uint32_t* group, const int8_t* word, uint32_t b0,
                                                             uint32_t b1, size_t r, const uint8_t* xp, size_t ldx,
                                                             size_t col, const int nb, __mmask16 last,
                                                             const sparrow_qgemm_epilogue* e) {
  __m512i a[4], c[4];
  for (int j = 0; j < nb; j++) a[j] = c[j] = _mm512_setzero_si512();
  const uint8_t* xc = xp + col * 4;
#define LOAD(x, j) ((j) == nb - 1 ? _mm512_maskz_loadu_epi32(last, (x) + 64 * (j)) : _mm512_loadu_si512((x) + 64 * (j)))
  uint32_t b = b0;
  for (; b + 2 <= b1; b += 2) {
    const __m512i w0 = _mm512_set1_epi32(sparrow_qgemm_word(word + (size_t)b * 4));
    const __m512i w1 = _mm512_set1_epi32(sparrow_qgemm_word(word + (size_t)b * 4 + 4));
    const uint8_t* x0 = xc + (size_t)group[b] * ldx * 4;
    const uint8_t* x1 = xc + (size_t)group[b + 1] * ldx * 4;
    for (int j = 0; j < nb; j++) a[j] = _mm512_dpbusd_epi32(a[j], LOAD(x0, j), w0);
    for (int j = 0; j < nb; j++) c[j] = _mm512_dpbusd_epi32(c[j], LOAD(x1, j), w1);
  }
  if (b < b1) {
    const __m512i w0 = _mm512_set1_epi32(sparrow_qgemm_word(word + (size_t)b * 4));
    const uint8_t* x0 = xc + (size_t)group[b] * ldx * 4;
    for (int j = 0; j < nb; j++) a[j] = _mm512_dpbusd_epi32(a[j], LOAD(x0, j), w0);
  }
#undef LOAD
  for (int j = 0; j < nb; j++)
    sparrow_qgemm_store16_avx512(e, r, col + 16 * (size_t)j, _mm512_add_epi32(a[j], c[j]), j == nb - 1 ? last : 0xFFFF);
}

/* The last `r` (1 or 2) columns past whole 16-column blocks (N = 49: 3 blocks and 1 column; as a
 * masked block that column cost a quarter of the layer), rows [r0, r1): 16 blocks at a time, their
 * words against the columns' X words gathered by group from `xr` (kq words per column). */
#define REM_KQ SPARROW_QGEMM_REM_KQ
T static inline __attribute__((always_inline)) void remainder_rows(const uint32_t* row_ptr, const uint32_t* group,
                                                                   const int8_t* word, size_t r0, size_t r1,
                                                                   const int32_t* xr0, const int32_t* xr1, const int r,
                                                                   size_t c0, const sparrow_qgemm_epilogue* e) {
  for (size_t row = r0; row < r1; row++) {
    const uint32_t b0 = row_ptr[row], b1 = row_ptr[row + 1];
    __m512i a = _mm512_setzero_si512(), c = _mm512_setzero_si512();
    uint32_t b = b0;
    for (; b + 16 <= b1; b += 16) {
      const __m512i g = _mm512_loadu_si512(group + b), w = _mm512_loadu_si512(word + (size_t)b * 4);
      a = _mm512_dpbusd_epi32(a, _mm512_i32gather_epi32(g, xr0, 4), w);
      if (r == 2) c = _mm512_dpbusd_epi32(c, _mm512_i32gather_epi32(g, xr1, 4), w);
    }
    if (b < b1) {
      const __mmask16 m = (__mmask16)((1u << (b1 - b)) - 1);
      const __m512i g = _mm512_maskz_loadu_epi32(m, group + b), w = _mm512_maskz_loadu_epi32(m, word + (size_t)b * 4);
      a = _mm512_dpbusd_epi32(a, _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, g, xr0, 4), w);
      if (r == 2) c = _mm512_dpbusd_epi32(c, _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, g, xr1, 4), w);
    }
    const int32_t v[2] = {_mm512_reduce_add_epi32(a), _mm512_reduce_add_epi32(c)};
    sparrow_qgemm_store_row(e, row, c0, v, (size_t)r);
  }
}

T void sparrow_qspmm_bsr1x4_u8s8_1x64__avx512vnni(const uint32_t* row_ptr, const uint32_t* group, const int8_t* word,
                                                  size_t r0, size_t r1, const uint8_t* xp, size_t n,
                                                  const sparrow_qgemm_epilogue* e) {
  const size_t ldx = sparrow_qgemm_ldx(n);
  size_t blocks = (n + 15) / 16, rem = n - 16 * (blocks - 1);
  _Alignas(64) int32_t xr[2][REM_KQ];
  if (blocks >= 2 && rem <= 2) {
    /* kq is not passed: the largest group of rows [r0, r1) (each row's last: groups ascend)
     * bounds the X words the remainder reads. */
    size_t kq = 0;
    for (size_t row = r0; row < r1; row++)
      if (row_ptr[row + 1] > row_ptr[row] && group[row_ptr[row + 1] - 1] + 1 > kq) kq = group[row_ptr[row + 1] - 1] + 1;
    if (kq <= REM_KQ) {
      n -= rem;
      blocks--;
      for (size_t c = 0; c < rem; c++) sparrow_qgemm_x_column(xp, ldx, kq, n + c, xr[c]);
    } else {
      rem = 0;
    }
  } else {
    rem = 0;
  }
  const size_t tiles = (blocks + 3) / 4;
  for (size_t t = 0, q0 = 0; t < tiles; t++) {
    const size_t q1 = blocks * (t + 1) / tiles, col = 16 * q0;
    const int nb = (int)(q1 - q0);
    const size_t left = (n < 16 * q1 ? n : 16 * q1) - col;
    const __mmask16 last = (__mmask16)(0xFFFFu >> (16 * (size_t)nb - left));
    q0 = q1;
    for (size_t r = r0; r < r1; r++) {
      const uint32_t b0 = row_ptr[r], b1 = row_ptr[r + 1];
      switch (nb) {
        case 4:
          row_tile(group, word, b0, b1, r, xp, ldx, col, 4, last, e);
          break;
        case 3:
          row_tile(group, word, b0, b1, r, xp, ldx, col, 3, last, e);
          break;
        case 2:
          row_tile(group, word, b0, b1, r, xp, ldx, col, 2, last, e);
          break;
        default:
          row_tile(group, word, b0, b1, r, xp, ldx, col, 1, last, e);
          break;
      }
    }
  }
  if (rem == 2)
    remainder_rows(row_ptr, group, word, r0, r1, xr[0], xr[1], 2, n, e);
  else if (rem == 1)
    remainder_rows(row_ptr, group, word, r0, r1, xr[0], xr[1], 1, n, e);
}
#endif
