/* int8 GEMM, AVX2, 4 rows x 8 columns per step (layouts: qgemm.h). vpmaddubsw would add two
 * u8 x s8 products into int16 and saturate (255 * 127 * 2 > 32767); ONNX Runtime avoids that by
 * quantizing weights to 7 bits (reduce_range). Here the products are exact instead: the 32 bytes
 * of 8 columns x 4 k are widened to int16 (vpmovzxbw) and multiplied by the row's 4 weights
 * widened to int16 with vpmaddwd (pairs of products into int32, no saturation). Each
 * accumulator holds two partial sums per column, added (vphaddd) after the last k group. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "epilogue-avx2.h"

#define MR 4

/* The row's 4 weights of group q as int16, repeated over the 256 bits. */
T static inline __m256i weights16(const int8_t* wq, size_t i) {
  const __m128i w8 = _mm_cvtsi32_si128(sparrow_qgemm_word(wq + i * 4));
  return _mm256_broadcastq_epi64(_mm_cvtepi8_epi16(w8));
}

T void sparrow_qgemm_u8s8_4x8__avx2(const int8_t* wp, size_t kq, size_t m, size_t p0, size_t p1, const uint8_t* xp,
                                    size_t n, const sparrow_qgemm_epilogue* e) {
  const size_t n8 = n & ~(size_t)7;
  for (size_t p = p0; p < p1; p++) {
    const int8_t* w = wp + p * kq * MR * 4;
    const size_t rows = m - p * MR < MR ? m - p * MR : MR;
    for (size_t col = 0; col < n8; col += 8) {
      __m256i a0 = _mm256_setzero_si256(), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
      const uint8_t* x = xp + col * 4;
      const int8_t* wq = w;
      for (size_t q = 0; q < kq; q++, x += sparrow_qgemm_ldx(n) * 4, wq += MR * 4) {
        const __m256i xv = _mm256_loadu_si256((const __m256i*)x);
        const __m256i lo = _mm256_cvtepu8_epi16(_mm256_castsi256_si128(xv));      /* columns 0-3 */
        const __m256i hi = _mm256_cvtepu8_epi16(_mm256_extracti128_si256(xv, 1)); /* columns 4-7 */
        __m256i wv = weights16(wq, 0);
        a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(lo, wv));
        b0 = _mm256_add_epi32(b0, _mm256_madd_epi16(hi, wv));
        wv = weights16(wq, 1);
        a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(lo, wv));
        b1 = _mm256_add_epi32(b1, _mm256_madd_epi16(hi, wv));
        wv = weights16(wq, 2);
        a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(lo, wv));
        b2 = _mm256_add_epi32(b2, _mm256_madd_epi16(hi, wv));
        wv = weights16(wq, 3);
        a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(lo, wv));
        b3 = _mm256_add_epi32(b3, _mm256_madd_epi16(hi, wv));
      }
      /* hadd gives columns 0 1 4 5 | 2 3 6 7; the permute puts them in order. */
      __m256i s[MR];
      s[0] = _mm256_permute4x64_epi64(_mm256_hadd_epi32(a0, b0), 0xD8);
      s[1] = _mm256_permute4x64_epi64(_mm256_hadd_epi32(a1, b1), 0xD8);
      s[2] = _mm256_permute4x64_epi64(_mm256_hadd_epi32(a2, b2), 0xD8);
      s[3] = _mm256_permute4x64_epi64(_mm256_hadd_epi32(a3, b3), 0xD8);
      for (size_t i = 0; i < rows; i++) sparrow_qgemm_store8_avx2(e, p * MR + i, col, s[i]);
    }
    for (size_t col = n8; col < n; col++) {
      uint32_t acc[MR] = {0, 0, 0, 0};
      for (size_t q = 0; q < kq; q++) {
        const uint8_t* x = xp + (q * sparrow_qgemm_ldx(n) + col) * 4;
        const int8_t* wq = w + q * MR * 4;
        for (size_t i = 0; i < MR; i++)
          for (size_t j = 0; j < 4; j++) acc[i] += (uint32_t)((int32_t)x[j] * (int32_t)wq[i * 4 + j]);
      }
      for (size_t i = 0; i < rows; i++) sparrow_qgemm_store1(e, p * MR + i, col, (int32_t)acc[i]);
    }
  }
}
#endif
