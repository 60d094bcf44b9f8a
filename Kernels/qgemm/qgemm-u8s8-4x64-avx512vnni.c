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
                                                         const uint8_t* xp, size_t ldx, size_t col, const int nb,
                                                         __mmask16 last, const sparrow_qgemm_epilogue* e) {
  __m512i acc[MR][4];
  for (size_t i = 0; i < MR; i++)
    for (int b = 0; b < nb; b++) acc[i][b] = _mm512_setzero_si512();
  const uint8_t* x = xp + col * 4;
  for (size_t q = 0; q < kq; q++, x += ldx * 4, w += MR * 4) {
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

/* The last `r` (1 or 2) columns from c0, for panels [p0, p1), when a masked block would hold only
 * them (49 columns: 3 full blocks and 1 column; that block cost a quarter of the layer). Vectors
 * run along K instead: a panel's 4 groups x 4 rows of weights are 64 contiguous bytes, multiplied
 * by the column's 4 words of X, each spread over its 4 row lanes; the 4 groups' lanes are added at
 * the end. The columns' X is first gathered into `xr` (kq words each, kq <= SPARROW_QGEMM_REM_KQ). */
#define REM_KQ SPARROW_QGEMM_REM_KQ
T static inline __attribute__((always_inline)) void remainder_panel(const int8_t* w, size_t kq, const int32_t* xr0,
                                                                    const int32_t* xr1, const int r, size_t row0,
                                                                    size_t rows, size_t c0,
                                                                    const sparrow_qgemm_epilogue* e) {
  const __m512i spread = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
#define XV(xr, q) _mm512_permutexvar_epi32(spread, _mm512_castsi128_si512(_mm_load_si128((const __m128i*)((xr) + (q)))))
  /* Four accumulators per column: vpdpbusd's latency would otherwise bound the loop. */
  __m512i a[4], b[4];
  for (int j = 0; j < 4; j++) a[j] = b[j] = _mm512_setzero_si512();
  size_t q = 0;
  for (; q + 16 <= kq; q += 16)
    for (int j = 0; j < 4; j++) {
      const __m512i wv = _mm512_loadu_si512(w + (q + 4 * (size_t)j) * MR * 4);
      DOT(a[j], XV(xr0, q + 4 * (size_t)j), wv);
      if (r == 2) DOT(b[j], XV(xr1, q + 4 * (size_t)j), wv);
    }
  for (; q < kq; q += 4) {
    const __mmask16 mask = kq - q >= 4 ? 0xFFFF : (__mmask16)((1u << (4 * (kq - q))) - 1);
    const __m512i wv = _mm512_maskz_loadu_epi32(mask, w + q * MR * 4);
    DOT(a[0], XV(xr0, q), wv);
    if (r == 2) DOT(b[0], XV(xr1, q), wv);
  }
#undef XV
  for (int c = 0; c < r; c++) {
    __m512i* s = c == 0 ? a : b;
    __m512i t = _mm512_add_epi32(_mm512_add_epi32(s[0], s[1]), _mm512_add_epi32(s[2], s[3]));
    t = _mm512_add_epi32(t, _mm512_shuffle_i32x4(t, t, 0x4E));
    t = _mm512_add_epi32(t, _mm512_shuffle_i32x4(t, t, 0xB1));
    int32_t v[4];
    _mm_storeu_si128((__m128i*)v, _mm512_castsi512_si128(t));
    for (size_t i = 0; i < rows; i++) sparrow_qgemm_store_row(e, row0 + i, c0 + (size_t)c, v + i, 1);
  }
}

T void sparrow_qgemm_u8s8_4x64__avx512vnni(const int8_t* wp, size_t kq, size_t m, size_t p0, size_t p1,
                                           const uint8_t* xp, size_t n, const sparrow_qgemm_epilogue* e) {
  const size_t ldx = sparrow_qgemm_ldx(n);
  size_t blocks = (n + 15) / 16, r = n - 16 * (blocks - 1);
  /* A last block of 1 or 2 columns: those columns along K, each panel right after its last tile
   * (its weights still in L1; a separate pass streamed all of W again, 0.09 ms on 512 x 4608). */
  _Alignas(64) int32_t xr[2][REM_KQ + 4];
  if (blocks >= 2 && r <= 2 && kq <= REM_KQ) {
    n -= r;
    blocks--;
    for (size_t c = 0; c < r; c++) {
      sparrow_qgemm_x_column(xp, ldx, kq, n + c, xr[c]);
      for (size_t q = kq; q < kq + 4; q++) xr[c][q] = 0;
    }
  } else {
    r = 0;
  }
  /* The 16-column blocks spread evenly over tiles of at most 4 (196 columns: 4+3+3+3 blocks, not
   * 4+4+4+1, whose last tile would run four dependent chains); only the very last block is masked. */
  const size_t tiles = (blocks + 3) / 4;
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
          tile(w, kq, rows, p * MR, xp, ldx, col, 4, last, e);
          break;
        case 3:
          tile(w, kq, rows, p * MR, xp, ldx, col, 3, last, e);
          break;
        case 2:
          tile(w, kq, rows, p * MR, xp, ldx, col, 2, last, e);
          break;
        default:
          tile(w, kq, rows, p * MR, xp, ldx, col, 1, last, e);
          break;
      }
      if (r > 0 && t == tiles - 1) {
        if (r == 2)
          remainder_panel(w, kq, xr[0], xr[1], 2, p * MR, rows, n, e);
        else
          remainder_panel(w, kq, xr[0], xr[1], 1, p * MR, rows, n, e);
      }
    }
  }
}
#endif
