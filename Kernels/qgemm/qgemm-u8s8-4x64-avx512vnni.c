/* int8 GEMM, AVX-512 VNNI, 4 rows x 64 columns per step (layouts: qgemm.h): per k group, four
 * 64-byte loads of X (16 columns x 4 k each), four broadcasts of a row's 4 weights, sixteen
 * vpdpbusd (u8 x s8, four products added into each int32 lane, no intermediate saturation)
 * into sixteen zmm accumulators. Then 16-column blocks, the last one masked. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "epilogue-avx512.h"

#define MR 4

#define DOT(acc, xv, wv) acc = _mm512_dpbusd_epi32(acc, xv, wv)

T void sparrow_qgemm_u8s8_4x64__avx512vnni(const int8_t* wp, size_t kq, size_t m, size_t p0, size_t p1,
                                           const uint8_t* xp, size_t n, const sparrow_qgemm_epilogue* e) {
  const size_t n64 = n & ~(size_t)63;
  for (size_t p = p0; p < p1; p++) {
    const int8_t* w = wp + p * kq * MR * 4;
    const size_t rows = m - p * MR < MR ? m - p * MR : MR;
    for (size_t col = 0; col < n64; col += 64) {
      __m512i acc[MR][4];
      for (size_t i = 0; i < MR; i++)
        for (size_t b = 0; b < 4; b++) acc[i][b] = _mm512_setzero_si512();
      const uint8_t* x = xp + col * 4;
      const int8_t* wq = w;
      for (size_t q = 0; q < kq; q++, x += n * 4, wq += MR * 4) {
        const __m512i x0 = _mm512_loadu_si512(x), x1 = _mm512_loadu_si512(x + 64);
        const __m512i x2 = _mm512_loadu_si512(x + 128), x3 = _mm512_loadu_si512(x + 192);
        for (size_t i = 0; i < MR; i++) {
          const __m512i wv = _mm512_set1_epi32(sparrow_qgemm_word(wq + i * 4));
          DOT(acc[i][0], x0, wv);
          DOT(acc[i][1], x1, wv);
          DOT(acc[i][2], x2, wv);
          DOT(acc[i][3], x3, wv);
        }
      }
      for (size_t i = 0; i < rows; i++)
        for (size_t b = 0; b < 4; b++) sparrow_qgemm_store16_avx512(e, p * MR + i, col + 16 * b, acc[i][b], 0xFFFF);
    }
    for (size_t col = n64; col < n; col += 16) {
      const size_t left = n - col < 16 ? n - col : 16;
      const __mmask16 mask = (__mmask16)((1u << left) - 1);
      __m512i acc[MR];
      for (size_t i = 0; i < MR; i++) acc[i] = _mm512_setzero_si512();
      const uint8_t* x = xp + col * 4;
      const int8_t* wq = w;
      for (size_t q = 0; q < kq; q++, x += n * 4, wq += MR * 4) {
        const __m512i xv = _mm512_maskz_loadu_epi32(mask, x);
        for (size_t i = 0; i < MR; i++) DOT(acc[i], xv, _mm512_set1_epi32(sparrow_qgemm_word(wq + i * 4)));
      }
      for (size_t i = 0; i < rows; i++) sparrow_qgemm_store16_avx512(e, p * MR + i, col, acc[i], mask);
    }
  }
}
#endif
