/* Every other float of a row (stride-2 convolutions' im2col and window panels): two loads of 8,
 * one shuffle and one permute give 8 outputs. The inline AVX2 form is for AVX2 kernels (included
 * only inside `#if defined(__x86_64__)`); code that runs under any ISA calls the function the
 * dispatcher hands out (sparrow_dispatch_even, Kernels/dispatch). Callers finish the tail scalar. */
#ifndef SPARROW_EVEN_H
#define SPARROW_EVEN_H
#include <stddef.h>

/* out[i] = src[2i] for i below the returned count; the caller does the rest. */
typedef size_t (*sparrow_even_fn)(float* out, const float* src, size_t n);
size_t sparrow_even_f32__scalar(float* out, const float* src, size_t n); /* does none: returns 0 */
/* even[i] = src[2i] and odd[i] = src[2i + 1] for i below the returned count (<= pairs, the rest
 * is the caller's), reading src[0 ..< 2 * count] only: a stride-2 row split into its two phases in
 * one pass (the padded planes of stride-2 windows, Kernels/conv/window.c). */
typedef size_t (*sparrow_split2_fn)(float* even, float* odd, const float* src, size_t pairs);
size_t sparrow_split2_f32__scalar(float* even, float* odd, const float* src, size_t pairs);
#if defined(__x86_64__)
size_t sparrow_split2_f32__avx2(float* even, float* odd, const float* src, size_t pairs);
size_t sparrow_split2_f32__avx512f(float* even, float* odd, const float* src, size_t pairs);
#endif
/* o[i] = the maximum of a[2i], a[2i + 1], b[2i] and b[2i + 1] for i below the returned count (the
 * caller does the rest), folded as the max-pooling kernel's plain path folds them (bit for bit,
 * NaNs and signed zeros included): a 2x2 stride-2 pooling window over two input rows. */
typedef size_t (*sparrow_pool2_fn)(float* o, const float* a, const float* b, size_t n);
size_t sparrow_pool2_f32__scalar(float* o, const float* a, const float* b, size_t n); /* does none: returns 0 */
#if defined(__x86_64__)
size_t sparrow_pool2_f32__avx2(float* o, const float* a, const float* b, size_t n);
size_t sparrow_pool2_f32__avx512f(float* o, const float* a, const float* b, size_t n);
#endif
#if defined(__aarch64__)
size_t sparrow_split2_f32__neon(float* even, float* odd, const float* src, size_t pairs);
#endif
#if defined(__x86_64__)
size_t sparrow_even_f32__avx2(float* out, const float* src, size_t n);
#include <immintrin.h>

/* out[i] = src[2i] for i below the returned count (a multiple of 8 short of n): reads no
 * further than src[2n - 3], so never past the last element the row needs. */
__attribute__((target("avx2"), always_inline)) static inline size_t sparrow_even_avx2(float* out, const float* src,
                                                                                      size_t n) {
  size_t i = 0;
  for (; i + 8 < n; i += 8) {
    const __m256 a = _mm256_loadu_ps(src + 2 * i), b = _mm256_loadu_ps(src + 2 * i + 8);
    const __m256 e = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)); /* a0 a2 b0 b2 | a4 a6 b4 b6 */
    _mm256_storeu_ps(out + i, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0))));
  }
  return i;
}
#endif
#endif
