/* Sparse int8 GEMM over 1x4 blocks (qspmm.h), AVX2: one row x 32 columns per step. Per block, the
 * 4 weights widened to int16 and the X group's bytes widened (vpmovzxbw) go through vpmaddwd, exact
 * as in the dense AVX2 kernel (no vpmaddubsw saturation); two partial sums per column, added
 * (vphaddd) at the end. Then 8-column blocks, then single columns. */
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

T void sparrow_qspmm_bsr1x4_u8s8_1x32__avx2(const uint32_t* row_ptr, const uint32_t* group, const int8_t* word,
                                            size_t r0, size_t r1, const uint8_t* xp, size_t n,
                                            const sparrow_qgemm_epilogue* e) {
  const size_t n32 = n & ~(size_t)31, n8 = n & ~(size_t)7;
  for (size_t r = r0; r < r1; r++) {
    const uint32_t b0 = row_ptr[r], b1 = row_ptr[r + 1];
    for (size_t col = 0; col < n32; col += 32) {
      __m256i lo[4], hi[4];
      for (size_t i = 0; i < 4; i++) lo[i] = hi[i] = _mm256_setzero_si256();
      for (uint32_t b = b0; b < b1; b++) {
        const __m256i wv = widen_w(word + (size_t)b * 4);
        const uint8_t* x = xp + ((size_t)group[b] * n + col) * 4;
        STEP(0) STEP(1) STEP(2) STEP(3)
      }
      for (size_t i = 0; i < 4; i++) sparrow_qgemm_store8_avx2(e, r, col + 8 * i, finish8(lo[i], hi[i]));
    }
    for (size_t col = n32; col < n8; col += 8) {
      __m256i lo[1] = {_mm256_setzero_si256()}, hi[1] = {_mm256_setzero_si256()};
      for (uint32_t b = b0; b < b1; b++) {
        const __m256i wv = widen_w(word + (size_t)b * 4);
        const uint8_t* x = xp + ((size_t)group[b] * n + col) * 4;
        STEP(0)
      }
      sparrow_qgemm_store8_avx2(e, r, col, finish8(lo[0], hi[0]));
    }
    for (size_t col = n8; col < n; col++) {
      uint32_t acc = 0;
      for (uint32_t b = b0; b < b1; b++) {
        const uint8_t* x = xp + ((size_t)group[b] * n + col) * 4;
        const int8_t* w = word + (size_t)b * 4;
        for (size_t j = 0; j < 4; j++) acc += (uint32_t)((int32_t)x[j] * (int32_t)w[j]);
      }
      sparrow_qgemm_store1(e, r, col, (int32_t)acc);
    }
  }
}
#endif
