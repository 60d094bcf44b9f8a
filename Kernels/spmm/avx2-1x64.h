/* Helpers shared by the 1x64 AVX2 microkernels (CSR, N:M): tail masks and the unrolled
 * load / FMA / store macros over up to 8 YMM accumulators named A##0 .. A##7. Included only
 * inside `#if defined(__x86_64__)`. */
#ifndef SPARROW_SPMM_AVX2_1X64_H
#define SPARROW_SPMM_AVX2_1X64_H
#include <immintrin.h>

#define SPARROW_AVX2 __attribute__((target("avx2,fma"), always_inline)) static inline

SPARROW_AVX2 __m256i tail_mask(size_t rem) {
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)rem), lanes);
}

#define LD(P, I, NV, MASKED, MASK) \
  ((MASKED) && (I) == (NV) - 1 ? _mm256_maskload_ps((P) + 8 * (I), MASK) : _mm256_loadu_ps((P) + 8 * (I)))
#define FMA1(A, I, V, P, NV) \
  if ((NV) > (I)) A##I = _mm256_fmadd_ps(V, _mm256_load_ps((P) + 8 * (I)), A##I)
#define LOADFMA(A, V, P, NV)                                                                  \
  do {                                                                                        \
    FMA1(A, 0, V, P, NV); FMA1(A, 1, V, P, NV); FMA1(A, 2, V, P, NV); FMA1(A, 3, V, P, NV);   \
    FMA1(A, 4, V, P, NV); FMA1(A, 5, V, P, NV); FMA1(A, 6, V, P, NV); FMA1(A, 7, V, P, NV);   \
  } while (0)
#define ST1(Y, I, A, NV, MASKED, MASK, CLAMP, LO, HI)                                 \
  if ((NV) > (I)) {                                                                   \
    const __m256 c_ = (CLAMP) ? _mm256_min_ps(_mm256_max_ps(A##I, LO), HI) : (A##I); \
    if ((MASKED) && (I) == (NV) - 1) _mm256_maskstore_ps((Y) + 8 * (I), MASK, c_);    \
    else _mm256_storeu_ps((Y) + 8 * (I), c_);                                         \
  }
#define STORE(Y, A, NV, MASKED, MASK, CLAMP, LO, HI)                                      \
  do {                                                                                    \
    ST1(Y, 0, A, NV, MASKED, MASK, CLAMP, LO, HI) ST1(Y, 1, A, NV, MASKED, MASK, CLAMP, LO, HI) \
    ST1(Y, 2, A, NV, MASKED, MASK, CLAMP, LO, HI) ST1(Y, 3, A, NV, MASKED, MASK, CLAMP, LO, HI) \
    ST1(Y, 4, A, NV, MASKED, MASK, CLAMP, LO, HI) ST1(Y, 5, A, NV, MASKED, MASK, CLAMP, LO, HI) \
    ST1(Y, 6, A, NV, MASKED, MASK, CLAMP, LO, HI) ST1(Y, 7, A, NV, MASKED, MASK, CLAMP, LO, HI) \
  } while (0)
#define LDY1(A, I, Y, NV, MASKED, MASK) if ((NV) > (I)) A##I = LD(Y, I, NV, MASKED, MASK)

#endif
