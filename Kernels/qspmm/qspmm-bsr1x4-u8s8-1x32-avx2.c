/* Sparse int8 GEMM over 1x4 blocks (qspmm.h), AVX2: one row x 32 columns per step. Per block, the
 * 4 weights widened to int16 and the X group's bytes widened (vpmovzxbw) go through vpmaddwd, exact
 * as in the dense AVX2 kernel (no vpmaddubsw saturation); two partial sums per column, added
 * (vphaddd) at the end. Then 8-column blocks, then the last 1-7 columns with partial loads. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "../qgemm/epilogue-avx2.h"
#include "qspmm.h"

T static inline __m256i widen_w(const int8_t* w) {
  return _mm256_broadcastq_epi64(_mm_cvtepi8_epi16(_mm_cvtsi32_si128(sparrow_qgemm_word(w))));
}

/* acc_lo/acc_hi cover columns 0-3 / 4-7 of an 8-column block as pair sums: in order. */
T static inline __m256i finish8(__m256i lo, __m256i hi) {
  return _mm256_permute4x64_epi64(_mm256_hadd_epi32(lo, hi), 0xD8);
}

#define STEP(i)                                                                                                    \
  {                                                                                                                \
    const __m256i xv = _mm256_loadu_si256((const __m256i*)(x + 32 * (i)));                                         \
    lo[i] = _mm256_add_epi32(lo[i], _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm256_castsi256_si128(xv)), wv));      \
    hi[i] = _mm256_add_epi32(hi[i], _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm256_extracti128_si256(xv, 1)), wv)); \
  }

/* Rows [r0, r1) over columns [c0, c1). */
T static void rows_columns(const uint32_t* row_ptr, const uint32_t* group, const int8_t* word, size_t r0, size_t r1,
                           const uint8_t* xp, size_t n, size_t c0, size_t c1, const sparrow_qgemm_epilogue* e) {
  const size_t n32 = c0 + ((c1 - c0) & ~(size_t)31), n8 = c0 + ((c1 - c0) & ~(size_t)7);
  for (size_t r = r0; r < r1; r++) {
    const uint32_t b0 = row_ptr[r], b1 = row_ptr[r + 1];
    for (size_t col = c0; col < n32; col += 32) {
      __m256i lo[4], hi[4];
      for (size_t i = 0; i < 4; i++) lo[i] = hi[i] = _mm256_setzero_si256();
      for (uint32_t b = b0; b < b1; b++) {
        const __m256i wv = widen_w(word + (size_t)b * 4);
        const uint8_t* x = xp + ((size_t)group[b] * sparrow_qgemm_ldx(n) + col) * 4;
        STEP(0) STEP(1) STEP(2) STEP(3)
      }
      for (size_t i = 0; i < 4; i++) sparrow_qgemm_store8_avx2(e, r, col + 8 * i, finish8(lo[i], hi[i]));
    }
    for (size_t col = n32; col < n8; col += 8) {
      __m256i lo[1] = {_mm256_setzero_si256()}, hi[1] = {_mm256_setzero_si256()};
      for (uint32_t b = b0; b < b1; b++) {
        const __m256i wv = widen_w(word + (size_t)b * 4);
        const uint8_t* x = xp + ((size_t)group[b] * sparrow_qgemm_ldx(n) + col) * 4;
        STEP(0)
      }
      sparrow_qgemm_store8_avx2(e, r, col, finish8(lo[0], hi[0]));
    }
    if (n8 < c1) {
      /* 1-7 columns left: partial loads, zeros past them (nothing read past the packed X). */
      const size_t cols = c1 - n8;
      __m256i lo = _mm256_setzero_si256(), hi = lo;
      for (uint32_t b = b0; b < b1; b++) {
        const __m256i wv = widen_w(word + (size_t)b * 4);
        const uint8_t* x = xp + ((size_t)group[b] * sparrow_qgemm_ldx(n) + n8) * 4;
        const __m256i xl = _mm256_cvtepu8_epi16(sparrow_qgemm_load_columns_avx2(x, cols < 4 ? cols : 4));
        lo = _mm256_add_epi32(lo, _mm256_madd_epi16(xl, wv));
        if (cols > 4) {
          const __m256i xh = _mm256_cvtepu8_epi16(sparrow_qgemm_load_columns_avx2(x + 16, cols - 4));
          hi = _mm256_add_epi32(hi, _mm256_madd_epi16(xh, wv));
        }
      }
      int32_t a[8];
      _mm256_storeu_si256((__m256i*)a, finish8(lo, hi));
      sparrow_qgemm_store_row(e, r, n8, a, cols);
    }
  }
}

/* Column blocks outside, rows inside: a block's X slice (K bytes per column) is read by every row
 * from L2 instead of all of X streaming from L3 once per row (a sparse row reuses an X load once,
 * where the dense kernels share it between 4 rows). */
T void sparrow_qspmm_bsr1x4_u8s8_1x32__avx2(const uint32_t* row_ptr, const uint32_t* group, const int8_t* word,
                                            size_t r0, size_t r1, const uint8_t* xp, size_t n,
                                            const sparrow_qgemm_epilogue* e) {
  const size_t block = 64; /* K x 64 bytes of X: <= 295 KB for ResNet-18's K <= 4608, in L2 */
  for (size_t c0 = 0; c0 < n; c0 += block)
    rows_columns(row_ptr, group, word, r0, r1, xp, n, c0, c0 + block < n ? c0 + block : n, e);
}
#endif
