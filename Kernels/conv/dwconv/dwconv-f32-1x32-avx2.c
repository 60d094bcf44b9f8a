/* Depthwise rows, AVX2/FMA: the call's output is cut into 8-lane slots, row by row (the last
 * slot of a row holds wo mod 8 lanes when that is not 0), and slots go eight at a time through
 * eight independent FMA chains, whatever rows they come from: a 112-wide row fills 14 slots, a
 * 7-wide one a single slot, and eight 7-wide rows make one group. Loads are whole vectors (the
 * last slot of a row reads up to 7 floats past it, dwconv.h); stores of partial slots are
 * masked. Until 2026-12 this kernel ran one row per call with one chain per 8-lane rest, which
 * left MobileNetV2's 7- to 28-wide maps FMA-latency bound (depthwise 54% of its 90% model). */
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdint.h>

#include "dwconv.h"

#define TARGET __attribute__((target("avx2,fma")))

/* NaN stays NaN: max/min return their second operand when either is NaN. */
TARGET static inline __m256 clamp8(__m256 v, __m256 lo, __m256 hi) { return _mm256_min_ps(hi, _mm256_max_ps(lo, v)); }

TARGET void sparrow_dwconv_f32_1x32__avx2(size_t wo, size_t rows, size_t taps, const float* row, size_t row_step,
                                          const size_t* offsets, const float* weights, float bias, float lo, float hi,
                                          float* out) {
  const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi), vb = _mm256_set1_ps(bias);
  const size_t per = (wo + 7) / 8, total = rows * per, rest = wo - (per - 1) * 8;
  const __m256i tail = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)rest), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  size_t r = 0, v = 0; /* the next slot: row r, vector v */
  for (size_t s0 = 0; s0 < total; s0 += 8) {
    const size_t n = total - s0 < 8 ? total - s0 : 8;
    const float* in[8];
    float* o[8];
    int part[8];
    for (size_t i = 0; i < 8; i++) {
      if (i < n) {
        in[i] = row + r * row_step + 8 * v;
        o[i] = out + r * wo + 8 * v;
        part[i] = v + 1 == per && rest < 8;
        if (++v == per) v = 0, r++;
      } else {
        in[i] = in[0], o[i] = NULL, part[i] = 0;
      }
    }
    __m256 a0 = vb, a1 = vb, a2 = vb, a3 = vb, a4 = vb, a5 = vb, a6 = vb, a7 = vb;
    if (n == 8) {
      for (size_t t = 0; t < taps; t++) {
        const size_t off = offsets[t];
        const __m256 wt = _mm256_broadcast_ss(weights + t);
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(in[0] + off), wt, a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(in[1] + off), wt, a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(in[2] + off), wt, a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(in[3] + off), wt, a3);
        a4 = _mm256_fmadd_ps(_mm256_loadu_ps(in[4] + off), wt, a4);
        a5 = _mm256_fmadd_ps(_mm256_loadu_ps(in[5] + off), wt, a5);
        a6 = _mm256_fmadd_ps(_mm256_loadu_ps(in[6] + off), wt, a6);
        a7 = _mm256_fmadd_ps(_mm256_loadu_ps(in[7] + off), wt, a7);
      }
    } else if (n > 4) {
      for (size_t t = 0; t < taps; t++) {
        const size_t off = offsets[t];
        const __m256 wt = _mm256_broadcast_ss(weights + t);
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(in[0] + off), wt, a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(in[1] + off), wt, a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(in[2] + off), wt, a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(in[3] + off), wt, a3);
        a4 = _mm256_fmadd_ps(_mm256_loadu_ps(in[4] + off), wt, a4);
        if (n > 5) a5 = _mm256_fmadd_ps(_mm256_loadu_ps(in[5] + off), wt, a5);
        if (n > 6) a6 = _mm256_fmadd_ps(_mm256_loadu_ps(in[6] + off), wt, a6);
      }
    } else {
      for (size_t t = 0; t < taps; t++) {
        const size_t off = offsets[t];
        const __m256 wt = _mm256_broadcast_ss(weights + t);
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(in[0] + off), wt, a0);
        if (n > 1) a1 = _mm256_fmadd_ps(_mm256_loadu_ps(in[1] + off), wt, a1);
        if (n > 2) a2 = _mm256_fmadd_ps(_mm256_loadu_ps(in[2] + off), wt, a2);
        if (n > 3) a3 = _mm256_fmadd_ps(_mm256_loadu_ps(in[3] + off), wt, a3);
      }
    }
    const __m256 acc[8] = {a0, a1, a2, a3, a4, a5, a6, a7};
    for (size_t i = 0; i < n; i++) {
      const __m256 c = clamp8(acc[i], vlo, vhi);
      if (part[i]) _mm256_maskstore_ps(o[i], tail, c);
      else _mm256_storeu_ps(o[i], c);
    }
  }
}
#endif
