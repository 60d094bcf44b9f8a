/* Activation packer step (interleave.h), AVX2 level (128-bit unpacks): 16 columns of 4 rows per
 * step; stride 2 keeps the even bytes of 32 (mask and pack). */
#if defined(__x86_64__)
#include <immintrin.h>

#include "interleave.h"

#define T __attribute__((target("avx2,fma")))

T static inline __m128i load16(const uint8_t* p, size_t step, __m128i even) {
  if (step == 1) return _mm_loadu_si128((const __m128i*)p);
  const __m128i a = _mm_and_si128(_mm_loadu_si128((const __m128i*)p), even);
  const __m128i b = _mm_and_si128(_mm_loadu_si128((const __m128i*)(p + 16)), even);
  return _mm_packus_epi16(a, b);
}

T size_t sparrow_interleave_u8_4x16__avx2(uint8_t* out, const uint8_t* const r[4], size_t n, size_t step,
                                          uint8_t flip) {
  if (step != 1 && step != 2) return 0;
  const __m128i f = _mm_set1_epi8((char)flip), even = _mm_set1_epi16(0x00FF);
  size_t i = 0;
  /* Stride 2 reads 32 bytes for 16 columns: stop one block early so the last read ends at
   * r[j][2 (n - 1)] at most. */
  for (; step == 1 ? i + 16 <= n : i + 16 < n; i += 16) {
    const __m128i a0 = _mm_xor_si128(load16(r[0] + step * i, step, even), f);
    const __m128i a1 = _mm_xor_si128(load16(r[1] + step * i, step, even), f);
    const __m128i a2 = _mm_xor_si128(load16(r[2] + step * i, step, even), f);
    const __m128i a3 = _mm_xor_si128(load16(r[3] + step * i, step, even), f);
    const __m128i t0 = _mm_unpacklo_epi8(a0, a1), t1 = _mm_unpackhi_epi8(a0, a1);
    const __m128i t2 = _mm_unpacklo_epi8(a2, a3), t3 = _mm_unpackhi_epi8(a2, a3);
    __m128i* o = (__m128i*)(out + 4 * i);
    _mm_storeu_si128(o, _mm_unpacklo_epi16(t0, t2));
    _mm_storeu_si128(o + 1, _mm_unpackhi_epi16(t0, t2));
    _mm_storeu_si128(o + 2, _mm_unpacklo_epi16(t1, t3));
    _mm_storeu_si128(o + 3, _mm_unpackhi_epi16(t1, t3));
  }
  return i;
}
#endif
