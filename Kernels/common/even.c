/* The stride-2 row gathers the dispatcher hands to ISA-neutral code (im2col, padded planes). */
#include <float.h>

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

size_t sparrow_pool2_f32__scalar(float* o, const float* a, const float* b, size_t n) {
  (void)o, (void)a, (void)b, (void)n;
  return 0;
}

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

/* 2x2/2 max pooling of one output row (maxpool.c's fold, operand for operand: MAXF(m, v) is
 * v > m ? v : m, which is max_ps(v, m): the rows first, then -FLT_MAX, the even and the odd
 * column). 8 outputs: four loads, two maxima, two in-lane shuffles, two maxima, one permute. */
__attribute__((target("avx2"))) size_t sparrow_pool2_f32__avx2(float* o, const float* a, const float* b, size_t n) {
  const __m256 lowest = _mm256_set1_ps(-FLT_MAX);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 r0 = _mm256_max_ps(_mm256_loadu_ps(b + 2 * i), _mm256_loadu_ps(a + 2 * i));
    const __m256 r1 = _mm256_max_ps(_mm256_loadu_ps(b + 2 * i + 8), _mm256_loadu_ps(a + 2 * i + 8));
    const __m256 e = _mm256_shuffle_ps(r0, r1, _MM_SHUFFLE(2, 0, 2, 0)),
                 d = _mm256_shuffle_ps(r0, r1, _MM_SHUFFLE(3, 1, 3, 1));
    const __m256 m = _mm256_max_ps(d, _mm256_max_ps(e, lowest));
    _mm256_storeu_ps(o + i, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(m), _MM_SHUFFLE(3, 1, 2, 0))));
  }
  return i;
}

/* The same, 16 outputs per step, the tail under masks. */
__attribute__((target("avx512f"))) size_t sparrow_pool2_f32__avx512f(float* o, const float* a, const float* b,
                                                                     size_t n) {
  const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  const __m512 lowest = _mm512_set1_ps(-FLT_MAX);
  size_t i = 0;
  for (; i < n; i += 16) {
    const size_t left = n - i < 16 ? n - i : 16, f = 2 * left; /* 2 ..= 32 floats per row */
    const __mmask16 ma = (__mmask16)(f >= 16 ? 0xFFFFu : (1u << f) - 1u);
    const __mmask16 mb = (__mmask16)(f >= 32 ? 0xFFFFu : f > 16 ? (1u << (f - 16)) - 1u : 0u);
    const __mmask16 mo = (__mmask16)(left == 16 ? 0xFFFFu : (1u << left) - 1u);
    const __m512 r0 = _mm512_max_ps(_mm512_maskz_loadu_ps(ma, b + 2 * i), _mm512_maskz_loadu_ps(ma, a + 2 * i));
    const __m512 r1 =
        _mm512_max_ps(_mm512_maskz_loadu_ps(mb, b + 2 * i + 16), _mm512_maskz_loadu_ps(mb, a + 2 * i + 16));
    const __m512 e = _mm512_permutex2var_ps(r0, ie, r1), d = _mm512_permutex2var_ps(r0, io, r1);
    _mm512_mask_storeu_ps(o + i, mo, _mm512_max_ps(d, _mm512_max_ps(e, lowest)));
  }
  return n;
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
