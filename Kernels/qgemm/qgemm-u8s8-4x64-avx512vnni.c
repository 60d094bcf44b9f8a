/* int8 GEMM, AVX-512 VNNI, 4 rows x 64 columns per step (layouts: qgemm.h): per k group, four
 * 64-byte loads of X (16 columns x 4 k each), four broadcasts of a row's 4 weights, sixteen
 * vpdpbusd (u8 x s8, four products added into each int32 lane, no intermediate saturation)
 * into sixteen zmm accumulators.
 *
 * Loop order: a block of 64 columns outside, the panels inside, so the block's K x 64 bytes of X
 * are read from L1/L2 by every panel (a ResNet 3x3 layer's whole X is 1.8 MB: streamed once per
 * panel, it held the kernel at ~60% of its peak). A tile has 1-4 blocks of 16 columns, the last
 * of the matrix masked (a 49-column layer keeps its 16 accumulators rather than four chains of
 * 4, 0.5 ms instead of 1.1 on ResNet-18's 512 x 4608 x 49). */
#if defined(__x86_64__)
#include <immintrin.h>

#include "epilogue-avx512.h"

#define MR 4

#define DOT(acc, xv, wv) acc = _mm512_dpbusd_epi32(acc, xv, wv)

/* One tile: rows of panel p, columns [col, col + 16 * nb), the last block masked by `last`. */
T static inline __attribute__((always_inline)) void tile(const int8_t* w, size_t kq, size_t rows, size_t row0,
                                                         const uint8_t* xp, size_t n, size_t col, const int nb,
                                                         __mmask16 last, const sparrow_qgemm_epilogue* e) {
  __m512i acc[MR][4];
  for (size_t i = 0; i < MR; i++)
    for (int b = 0; b < nb; b++) acc[i][b] = _mm512_setzero_si512();
  const uint8_t* x = xp + col * 4;
  for (size_t q = 0; q < kq; q++, x += sparrow_qgemm_ldx(n) * 4, w += MR * 4) {
    __m512i xv[4];
    for (int b = 0; b < nb; b++)
      xv[b] = b == nb - 1 ? _mm512_maskz_loadu_epi32(last, x + 64 * b) : _mm512_loadu_si512(x + 64 * b);
    for (size_t i = 0; i < MR; i++) {
      const __m512i wv = _mm512_set1_epi32(sparrow_qgemm_word(w + i * 4));
      for (int b = 0; b < nb; b++) DOT(acc[i][b], xv[b], wv);
    }
  }
  for (size_t i = 0; i < rows; i++)
    for (int b = 0; b < nb; b++)
      sparrow_qgemm_store16_avx512(e, row0 + i, col + 16 * (size_t)b, acc[i][b], b == nb - 1 ? last : 0xFFFF);
}

T void sparrow_qgemm_u8s8_4x64__avx512vnni(const int8_t* wp, size_t kq, size_t m, size_t p0, size_t p1,
                                           const uint8_t* xp, size_t n, const sparrow_qgemm_epilogue* e) {
  /* The 16-column blocks spread evenly over tiles of at most 4 (196 columns: 4+3+3+3 blocks, not
   * 4+4+4+1, whose last tile would run four dependent chains); only the very last block is masked. */
  const size_t blocks = (n + 15) / 16, tiles = (blocks + 3) / 4;
  for (size_t t = 0, b0 = 0; t < tiles; t++) {
    const size_t b1 = blocks * (t + 1) / tiles, col = 16 * b0;
    const int nb = (int)(b1 - b0);
    const size_t left = (n < 16 * b1 ? n : 16 * b1) - col;
    const __mmask16 last = (__mmask16)(0xFFFFu >> (16 * (size_t)nb - left));
    b0 = b1;
    for (size_t p = p0; p < p1; p++) {
      const int8_t* w = wp + p * kq * MR * 4;
      const size_t rows = m - p * MR < MR ? m - p * MR : MR;
      switch (nb) {
        case 4:
          tile(w, kq, rows, p * MR, xp, n, col, 4, last, e);
          break;
        case 3:
          tile(w, kq, rows, p * MR, xp, n, col, 3, last, e);
          break;
        case 2:
          tile(w, kq, rows, p * MR, xp, n, col, 2, last, e);
          break;
        default:
          tile(w, kq, rows, p * MR, xp, n, col, 1, last, e);
          break;
      }
    }
  }
}
#endif
