/* int8 GEMM, AVX2, 4 rows x 8 columns per step, weights packed widened to int16 (layouts:
 * qgemm.h, "w16"). Exact as the 4x8 kernel (vpmovzxbw'd activations times int16 weights with
 * vpmaddwd, no vpmaddubsw saturation), but each row's 4 weights are one vpbroadcastq from memory
 * (a load, no shuffle) instead of load + vpmovsxbw + vpbroadcastq in the inner loop: the shuffle
 * ports were the bound there, vpmaddwd is here. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "epilogue-avx2.h"

#define MR 4

/* The 4 int16 weights of one row of a group, repeated over the 256 bits (vpbroadcastq m64). */
T static inline __m256i row_weights(const int16_t* w) {
  long long v;
  __builtin_memcpy(&v, w, 8);
  return _mm256_set1_epi64x(v);
}

/* Panels [p0, p1) over columns [c0, c1). */
T static void panels_columns(const int16_t* w16, size_t kq, size_t m, size_t p0, size_t p1, const uint8_t* xp, size_t n,
                             size_t c0, size_t c1, const sparrow_qgemm_epilogue* e) {
  for (size_t p = p0; p < p1; p++) {
    const int16_t* w = w16 + p * kq * MR * 4;
    const size_t rows = m - p * MR < MR ? m - p * MR : MR;
    for (size_t col = c0; col < c1; col += 8) {
      /* The last step of a block may have 1-7 columns: partial loads, zeros past them (the
       * packed X has exactly n columns; nothing is read past them). */
      const size_t cols = c1 - col < 8 ? c1 - col : 8;
      __m256i a0 = _mm256_setzero_si256(), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
      const uint8_t* x = xp + col * 4;
      const int16_t* wq = w;
      for (size_t q = 0; q < kq; q++, x += sparrow_qgemm_ldx(n) * 4, wq += MR * 4) {
        __m256i lo, hi;
        if (cols == 8) {
          lo = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i*)x));        /* columns 0-3 */
          hi = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i*)(x + 16))); /* columns 4-7 */
        } else {
          lo = _mm256_cvtepu8_epi16(sparrow_qgemm_load_columns_avx2(x, cols < 4 ? cols : 4));
          hi = cols > 4 ? _mm256_cvtepu8_epi16(sparrow_qgemm_load_columns_avx2(x + 16, cols - 4))
                        : _mm256_setzero_si256();
        }
        __m256i wv = row_weights(wq + 0);
        a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(lo, wv));
        b0 = _mm256_add_epi32(b0, _mm256_madd_epi16(hi, wv));
        wv = row_weights(wq + 4);
        a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(lo, wv));
        b1 = _mm256_add_epi32(b1, _mm256_madd_epi16(hi, wv));
        wv = row_weights(wq + 8);
        a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(lo, wv));
        b2 = _mm256_add_epi32(b2, _mm256_madd_epi16(hi, wv));
        wv = row_weights(wq + 12);
        a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(lo, wv));
        b3 = _mm256_add_epi32(b3, _mm256_madd_epi16(hi, wv));
      }
      /* hadd gives columns 0 1 4 5 | 2 3 6 7; the permute puts them in order. */
      __m256i s[MR];
      s[0] = _mm256_permute4x64_epi64(_mm256_hadd_epi32(a0, b0), 0xD8);
      s[1] = _mm256_permute4x64_epi64(_mm256_hadd_epi32(a1, b1), 0xD8);
      s[2] = _mm256_permute4x64_epi64(_mm256_hadd_epi32(a2, b2), 0xD8);
      s[3] = _mm256_permute4x64_epi64(_mm256_hadd_epi32(a3, b3), 0xD8);
      if (cols == 8) {
        for (size_t i = 0; i < rows; i++) sparrow_qgemm_store8_avx2(e, p * MR + i, col, s[i]);
      } else {
        for (size_t i = 0; i < rows; i++) {
          int32_t a[8];
          _mm256_storeu_si256((__m256i*)a, s[i]);
          sparrow_qgemm_store_row(e, p * MR + i, col, a, cols);
        }
      }
    }
  }
}

/* Column blocks outside, panels inside: the block's X slice (about 96 KB) stays in L2 while every
 * panel reads it, instead of all of X streaming from L3 once per panel. */
T void sparrow_qgemm_u8s8w16_4x8__avx2(const int8_t* wp, size_t kq, size_t m, size_t p0, size_t p1, const uint8_t* xp,
                                       size_t n, const sparrow_qgemm_epilogue* e) {
  size_t block = ((size_t)96 * 1024 / (kq * 4 + 1)) & ~(size_t)7;
  if (block < 64) block = 64;
  const int16_t* w16 = (const int16_t*)(const void*)wp;
  for (size_t c0 = 0; c0 < n; c0 += block)
    panels_columns(w16, kq, m, p0, p1, xp, n, c0, c0 + block < n ? c0 + block : n, e);
}
#endif
