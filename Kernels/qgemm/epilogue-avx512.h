/* The requantize/dequantize epilogue of up to 16 outputs in AVX-512 (the definition is the scalar
 * one in qgemm.h). For the AVX-512 VNNI int8 kernels, dense and sparse. */
#ifndef SPARROW_QGEMM_EPILOGUE_AVX512_H
#define SPARROW_QGEMM_EPILOGUE_AVX512_H
#if defined(__x86_64__)
#include <immintrin.h>

#include "qgemm.h"

#ifndef T
#define T __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")))
#endif

/* Requantize/dequantize 16 outputs of row m from column n0; `mask` selects the valid ones. */
T static inline void sparrow_qgemm_store16_avx512(const sparrow_qgemm_epilogue* e, size_t m, size_t n0, __m512i acc,
                                                  __mmask16 mask) {
  if (e->y_col_stride != 1) {
    int32_t a[16];
    _mm512_storeu_si512(a, acc);
    sparrow_qgemm_store_row(e, m, n0, a, (size_t)__builtin_popcount(mask));
    return;
  }
  __m512i c = _mm512_sub_epi32(acc, _mm512_set1_epi32((int32_t)((uint32_t)e->x_zero * (uint32_t)e->row_sums[m])));
  if (e->bias != NULL) c = _mm512_add_epi32(c, _mm512_set1_epi32(e->bias[m]));
  __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(c), _mm512_set1_ps(e->scale[m]));
  const ptrdiff_t at = (ptrdiff_t)m * e->y_row_stride + (ptrdiff_t)n0;
  if (e->out == SPARROW_QOUT_F32) {
    if (e->fbias != NULL) v = _mm512_add_ps(v, _mm512_set1_ps(e->fbias[m]));
    v = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(e->lo)), _mm512_set1_ps(e->hi));
    _mm512_mask_storeu_ps((float*)e->y + at, mask, v);
    return;
  }
  v = _mm512_max_ps(v, _mm512_set1_ps((float)(e->q_lo - e->y_zero)));
  v = _mm512_min_ps(v, _mm512_set1_ps((float)(e->q_hi - e->y_zero)));
  /* Round to nearest, ties to even (MXCSR's default, as nearbyintf); values are in range. */
  const __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(v), _mm512_set1_epi32(e->y_zero));
  _mm_mask_storeu_epi8((uint8_t*)e->y + at, mask, _mm512_cvtepi32_epi8(q));
}

#endif
#endif
