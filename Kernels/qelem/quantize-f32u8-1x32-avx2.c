/* QuantizeLinear per tensor, AVX2, 32 values per step (qelem.h); the tail runs the scalar
 * definition. */
#if defined(__x86_64__)
#include "qelem-avx2.h"

T void sparrow_quantize_f32u8_1x32__avx2(size_t n, const void* a, const void* b, const sparrow_qelem_params* p,
                                         void* y) {
  (void)b;
  const float* x = (const float*)a;
  uint8_t* out = (uint8_t*)y;
  const sparrow_qelem_q_avx2 q = sparrow_qelem_q_setup_avx2(p);
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i q0 = sparrow_qelem_q8_avx2(_mm256_loadu_ps(x + i), &q);
    const __m256i q1 = sparrow_qelem_q8_avx2(_mm256_loadu_ps(x + i + 8), &q);
    const __m256i q2 = sparrow_qelem_q8_avx2(_mm256_loadu_ps(x + i + 16), &q);
    const __m256i q3 = sparrow_qelem_q8_avx2(_mm256_loadu_ps(x + i + 24), &q);
    sparrow_qelem_store32_avx2(out + i, q0, q1, q2, q3, &q);
  }
  for (; i < n; i++) out[i] = sparrow_qelem_q1(x[i], p);
}
#endif
