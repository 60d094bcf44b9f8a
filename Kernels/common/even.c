/* The stride-2 row gathers the dispatcher hands to ISA-neutral code (im2col, padded planes). */
#include "even.h"

size_t sparrow_even_f32__scalar(float* out, const float* src, size_t n) {
  (void)out, (void)src, (void)n;
  return 0;
}

#if defined(__x86_64__)
__attribute__((target("avx2"))) size_t sparrow_even_f32__avx2(float* out, const float* src, size_t n) {
  return sparrow_even_avx2(out, src, n);
}
#endif

size_t sparrow_split2_f32__scalar(float* even, float* odd, const float* src, size_t pairs) {
  for (size_t i = 0; i < pairs; i++) even[i] = src[2 * i], odd[i] = src[2 * i + 1];
  return pairs;
}

#if defined(__x86_64__)
/* 8 pairs: two loads, two in-lane shuffles, two 64-bit permutes. */
__attribute__((target("avx2"))) size_t sparrow_split2_f32__avx2(float* even, float* odd, const float* src,
                                                                size_t pairs) {
  size_t i = 0;
  for (; i + 8 <= pairs; i += 8) {
    const __m256 a = _mm256_loadu_ps(src + 2 * i), b = _mm256_loadu_ps(src + 2 * i + 8);
    const __m256 e = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)),
                 o = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
    _mm256_storeu_ps(even + i, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0))));
    _mm256_storeu_ps(odd + i, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), _MM_SHUFFLE(3, 1, 2, 0))));
  }
  for (; i < pairs; i++) even[i] = src[2 * i], odd[i] = src[2 * i + 1];
  return pairs;
}

/* 16 pairs: two loads, two two-source permutes; the tail under masks. */
__attribute__((target("avx512f"))) size_t sparrow_split2_f32__avx512f(float* even, float* odd, const float* src,
                                                                      size_t pairs) {
  const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  size_t i = 0;
  for (; i + 16 <= pairs; i += 16) {
    const __m512 a = _mm512_loadu_ps(src + 2 * i), b = _mm512_loadu_ps(src + 2 * i + 16);
    _mm512_storeu_ps(even + i, _mm512_permutex2var_ps(a, ie, b));
    _mm512_storeu_ps(odd + i, _mm512_permutex2var_ps(a, io, b));
  }
  if (i < pairs) {
    const size_t n = 2 * (pairs - i); /* 2 ..< 32 floats left */
    const __mmask16 ma = (__mmask16)(n >= 16 ? 0xFFFFu : (1u << n) - 1u);
    const __mmask16 mb = (__mmask16)(n > 16 ? (1u << (n - 16)) - 1u : 0u);
    const __mmask16 mo = (__mmask16)((1u << (pairs - i)) - 1u);
    const __m512 a = _mm512_maskz_loadu_ps(ma, src + 2 * i), b = _mm512_maskz_loadu_ps(mb, src + 2 * i + 16);
    _mm512_mask_storeu_ps(even + i, mo, _mm512_permutex2var_ps(a, ie, b));
    _mm512_mask_storeu_ps(odd + i, mo, _mm512_permutex2var_ps(a, io, b));
  }
  return pairs;
}
#endif

#if defined(__aarch64__)
#include <arm_neon.h>
/* 4 pairs: one de-interleaving load. */
size_t sparrow_split2_f32__neon(float* even, float* odd, const float* src, size_t pairs) {
  size_t i = 0;
  for (; i + 4 <= pairs; i += 4) {
    const float32x4x2_t v = vld2q_f32(src + 2 * i);
    vst1q_f32(even + i, v.val[0]);
    vst1q_f32(odd + i, v.val[1]);
  }
  for (; i < pairs; i++) even[i] = src[2 * i], odd[i] = src[2 * i + 1];
  return pairs;
}
#endif
