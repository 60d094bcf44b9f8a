/* The requantize/dequantize epilogue of 8 outputs in AVX2 (the definition is the scalar one in
 * qgemm.h: same float operations, vcvtps2dq rounding to nearest even as nearbyintf). For the
 * AVX2 int8 kernels, dense and sparse. */
#ifndef SPARROW_QGEMM_EPILOGUE_AVX2_H
#define SPARROW_QGEMM_EPILOGUE_AVX2_H
#if defined(__x86_64__)
#include <immintrin.h>

#include "qgemm.h"

#ifndef T
#define T __attribute__((target("avx2,fma")))
#endif

/* Vectorised requantize of 8 consecutive outputs of row m (columns contiguous in Y). */
T static inline void sparrow_qgemm_store8_avx2(const sparrow_qgemm_epilogue* e, size_t m, size_t n0, __m256i acc) {
  if (e->y_col_stride != 1) {
    int32_t a[8];
    _mm256_storeu_si256((__m256i*)a, acc);
    sparrow_qgemm_store_row(e, m, n0, a, 8);
    return;
  }
  __m256i c = _mm256_sub_epi32(acc, _mm256_set1_epi32((int32_t)((uint32_t)e->x_zero * (uint32_t)e->row_sums[m])));
  if (e->bias != NULL) c = _mm256_add_epi32(c, _mm256_set1_epi32(e->bias[m]));
  __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(c), _mm256_set1_ps(e->scale[m]));
  const ptrdiff_t at = (ptrdiff_t)m * e->y_row_stride + (ptrdiff_t)n0;
  if (e->out == SPARROW_QOUT_F32) {
    if (e->fbias != NULL) v = _mm256_add_ps(v, _mm256_set1_ps(e->fbias[m]));
    v = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(e->lo)), _mm256_set1_ps(e->hi));
    _mm256_storeu_ps((float*)e->y + at, v);
    return;
  }
  v = _mm256_max_ps(v, _mm256_set1_ps((float)(e->q_lo - e->y_zero)));
  v = _mm256_min_ps(v, _mm256_set1_ps((float)(e->q_hi - e->y_zero)));
  /* vcvtps2dq rounds as MXCSR says: to nearest, ties to even, as nearbyintf. */
  const __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(v), _mm256_set1_epi32(e->y_zero));
  const __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
  const __m128i q8 = e->out == SPARROW_QOUT_U8 ? _mm_packus_epi16(q16, q16) : _mm_packs_epi16(q16, q16);
  _mm_storel_epi64((__m128i*)((uint8_t*)e->y + at), q8);
}

/* The first `cols` (1-4) columns of a packed X group row (4 bytes each), zeros after them: the
 * last, partial column step of the AVX2 kernels reads nothing past the packed X. */
T static inline __m128i sparrow_qgemm_load_columns_avx2(const uint8_t* x, size_t cols) {
  switch (cols) {
    case 4:
      return _mm_loadu_si128((const __m128i*)x);
    case 3:
      return _mm_insert_epi32(_mm_loadl_epi64((const __m128i*)x), sparrow_qgemm_word(x + 8), 2);
    case 2:
      return _mm_loadl_epi64((const __m128i*)x);
    default:
      return _mm_cvtsi32_si128(sparrow_qgemm_word(x));
  }
}

#endif
#endif
