/* Sparse int8 GEMM over 1x4 blocks (qspmm.h), AVX-512 VNNI: one row x 64 columns per step, one
 * broadcast of the block's 4 weights and four vpdpbusd per block; 16-column blocks after, the
 * last masked. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "../qgemm/epilogue-avx512.h"
#include "qspmm.h"

T void sparrow_qspmm_bsr1x4_u8s8_1x64__avx512vnni(const uint32_t* row_ptr, const uint32_t* group, const int8_t* word,
                                                  size_t r0, size_t r1, const uint8_t* xp, size_t n,
                                                  const sparrow_qgemm_epilogue* e) {
  const size_t n64 = n & ~(size_t)63;
  for (size_t r = r0; r < r1; r++) {
    const uint32_t b0 = row_ptr[r], b1 = row_ptr[r + 1];
    for (size_t col = 0; col < n64; col += 64) {
      __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
      for (uint32_t b = b0; b < b1; b++) {
        const __m512i wv = _mm512_set1_epi32(sparrow_qgemm_word(word + (size_t)b * 4));
        const uint8_t* x = xp + ((size_t)group[b] * n + col) * 4;
        a0 = _mm512_dpbusd_epi32(a0, _mm512_loadu_si512(x), wv);
        a1 = _mm512_dpbusd_epi32(a1, _mm512_loadu_si512(x + 64), wv);
        a2 = _mm512_dpbusd_epi32(a2, _mm512_loadu_si512(x + 128), wv);
        a3 = _mm512_dpbusd_epi32(a3, _mm512_loadu_si512(x + 192), wv);
      }
      sparrow_qgemm_store16_avx512(e, r, col, a0, 0xFFFF);
      sparrow_qgemm_store16_avx512(e, r, col + 16, a1, 0xFFFF);
      sparrow_qgemm_store16_avx512(e, r, col + 32, a2, 0xFFFF);
      sparrow_qgemm_store16_avx512(e, r, col + 48, a3, 0xFFFF);
    }
    for (size_t col = n64; col < n; col += 16) {
      const size_t left = n - col < 16 ? n - col : 16;
      const __mmask16 mask = (__mmask16)((1u << left) - 1);
      __m512i a = _mm512_setzero_si512();
      for (uint32_t b = b0; b < b1; b++) {
        const __m512i wv = _mm512_set1_epi32(sparrow_qgemm_word(word + (size_t)b * 4));
        a = _mm512_dpbusd_epi32(a, _mm512_maskz_loadu_epi32(mask, xp + ((size_t)group[b] * n + col) * 4), wv);
      }
      sparrow_qgemm_store16_avx512(e, r, col, a, mask);
    }
  }
}
#endif
