/* The gate's selection for a full tile of 8 tokens, AVX2 (gated.c; the portable loop there is the
 * reference): per 8 inputs, each token's 8 values compared with its threshold and zeroed where
 * skipped, the 8 x 8 block transposed in registers so each input's 8 token values are one row,
 * and every row some token keeps appended to the list (rows are always stored, the list advances
 * only past kept ones: no branches on the data). The last k % 8 inputs go through the scalar
 * loop. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "gate.h"

#define T __attribute__((target("avx2,fma")))

T size_t sparrow_gate_select_tile8__avx2(size_t k, const float* const* xr, const float* thr, uint32_t* idx, float* xv,
                                         size_t* kept) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 th[8];
  for (size_t t = 0; t < 8; t++) th[t] = _mm256_set1_ps(thr[t]);
  size_t nk = 0, count = 0, i = 0;
  for (; i + 8 <= k; i += 8) {
    __m256 v[8];
    int any = 0;
    for (size_t t = 0; t < 8; t++) {
      const __m256 x = _mm256_loadu_ps(xr[t] + i);
      /* keep = !(|x| < thr): NaN compares unordered, so it is kept */
      const __m256 keep = _mm256_cmp_ps(_mm256_andnot_ps(sign, x), th[t], _CMP_NLT_UQ);
      const int bits = _mm256_movemask_ps(keep);
      any |= bits;
      count += (size_t)__builtin_popcount((unsigned)bits);
      v[t] = _mm256_and_ps(x, keep);
    }
    /* transpose: row j = input i + j's values for tokens 0..7 */
    const __m256 a0 = _mm256_unpacklo_ps(v[0], v[1]), a1 = _mm256_unpackhi_ps(v[0], v[1]);
    const __m256 a2 = _mm256_unpacklo_ps(v[2], v[3]), a3 = _mm256_unpackhi_ps(v[2], v[3]);
    const __m256 a4 = _mm256_unpacklo_ps(v[4], v[5]), a5 = _mm256_unpackhi_ps(v[4], v[5]);
    const __m256 a6 = _mm256_unpacklo_ps(v[6], v[7]), a7 = _mm256_unpackhi_ps(v[6], v[7]);
    const __m256 b0 = _mm256_shuffle_ps(a0, a2, 0x44), b1 = _mm256_shuffle_ps(a0, a2, 0xEE);
    const __m256 b2 = _mm256_shuffle_ps(a1, a3, 0x44), b3 = _mm256_shuffle_ps(a1, a3, 0xEE);
    const __m256 b4 = _mm256_shuffle_ps(a4, a6, 0x44), b5 = _mm256_shuffle_ps(a4, a6, 0xEE);
    const __m256 b6 = _mm256_shuffle_ps(a5, a7, 0x44), b7 = _mm256_shuffle_ps(a5, a7, 0xEE);
    __m256 r[8];
    r[0] = _mm256_permute2f128_ps(b0, b4, 0x20), r[1] = _mm256_permute2f128_ps(b1, b5, 0x20);
    r[2] = _mm256_permute2f128_ps(b2, b6, 0x20), r[3] = _mm256_permute2f128_ps(b3, b7, 0x20);
    r[4] = _mm256_permute2f128_ps(b0, b4, 0x31), r[5] = _mm256_permute2f128_ps(b1, b5, 0x31);
    r[6] = _mm256_permute2f128_ps(b2, b6, 0x31), r[7] = _mm256_permute2f128_ps(b3, b7, 0x31);
    for (size_t j = 0; j < 8; j++) {
      _mm256_storeu_ps(xv + nk * 8, r[j]);
      idx[nk] = (uint32_t)(i + j);
      nk += (size_t)((any >> j) & 1);
    }
  }
  for (; i < k; i++) {
    uint32_t any = 0;
    for (size_t t = 0; t < 8; t++) {
      const float v = xr[t][i];
      const uint32_t keep = (uint32_t)!(fabsf(v) < thr[t]);
      uint32_t bits;
      memcpy(&bits, &v, sizeof bits);
      bits &= 0u - keep;
      memcpy(xv + nk * 8 + t, &bits, sizeof bits);
      any |= keep;
      count += keep;
    }
    idx[nk] = (uint32_t)i;
    nk += any;
  }
  *kept += count;
  return nk;
}
#endif
