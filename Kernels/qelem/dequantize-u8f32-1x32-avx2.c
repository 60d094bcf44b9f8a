/* DequantizeLinear per tensor, AVX2, 32 values per step (qelem.h); the tail runs the scalar
 * definition. */
#if defined(__x86_64__)
#include "qelem-avx2.h"

T void sparrow_dequantize_u8f32_1x32__avx2(size_t n, const void* a, const void* b, const sparrow_qelem_params* p,
                                           void* y) {
  (void)b;
  const uint8_t* x = (const uint8_t*)a;
  float* out = (float*)y;
  const __m128i flip = _mm_set1_epi8((char)p->a_flip);
  const __m256i zero = _mm256_set1_epi32(p->a_zero);
  const __m256 scale = _mm256_set1_ps(p->a_scale);
  size_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (size_t j = 0; j < 32; j += 8)
      _mm256_storeu_ps(out + i + j, sparrow_qelem_dq8_avx2(x + i + j, flip, zero, scale));
  for (; i < n; i++) out[i] = sparrow_qelem_dq1(x[i], p->a_flip, p->a_zero, p->a_scale);
}
#endif
