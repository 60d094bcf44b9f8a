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

T void sparrow_qspmm_bsr1x4_u8s8_1x64__avx512vnni(const uint32_t* row_ptr, const uint32_t* group, const int8_t* word,
                                                  size_t r0, size_t r1, const uint8_t* xp, size_t n,
                                                  const sparrow_qgemm_epilogue* e) {
  const size_t ldx = sparrow_qgemm_ldx(n), blocks = (n + 15) / 16, tiles = (blocks + 3) / 4;
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
}
#endif
