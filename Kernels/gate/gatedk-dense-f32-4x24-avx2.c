/* Input-gated dense K-major product, AVX2/FMA (gate.h).
 * Several tokens: register blocks of up to 4 tokens x 24 outputs (three vectors), 12
 * accumulators kept over every kept input and added into y once (a call of 5-8 tokens runs two
 * passes); per kept input one broadcast per token and three weight loads feed 12 multiply-adds.
 * One token (the matrix-vector shape): kept weight rows four at a time streamed across the whole
 * output row, which stays in L1. Tails use masked loads and stores. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "gate.h"

#define T __attribute__((target("avx2,fma")))
#define ROW(j) ((const float*)((const char*)w + (size_t)idx[j] * w_stride))

T static inline __m256i tail_mask(size_t left) {
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(left > 8 ? 8 : (int)left), lanes);
}

T static void one_token(size_t n, size_t nk, const uint32_t* idx, const float* xv, const float* w, size_t w_stride,
                        float* y) {
  for (size_t j = 0; j < nk; j += 4) {
    const size_t g = nk - j < 4 ? nk - j : 4;
    /* A short last group repeats its first row with a zero factor: one loop for every group. */
    const float* wr[4];
    __m256 xb[4];
    for (size_t q = 0; q < 4; q++) {
      wr[q] = ROW(j + (q < g ? q : 0));
      xb[q] = _mm256_set1_ps(q < g ? xv[j + q] : 0.0f);
    }
    for (size_t q = 4; q < 8 && j + q < nk; q++) _mm_prefetch((const char*)ROW(j + q), _MM_HINT_T0);
    size_t o = 0;
    for (; o + 8 <= n; o += 8) {
      __m256 a = _mm256_fmadd_ps(xb[0], _mm256_loadu_ps(wr[0] + o), _mm256_loadu_ps(y + o));
      a = _mm256_fmadd_ps(xb[1], _mm256_loadu_ps(wr[1] + o), a);
      a = _mm256_fmadd_ps(xb[2], _mm256_loadu_ps(wr[2] + o), a);
      a = _mm256_fmadd_ps(xb[3], _mm256_loadu_ps(wr[3] + o), a);
      _mm256_storeu_ps(y + o, a);
    }
    if (o < n) {
      const __m256i m = tail_mask(n - o);
      __m256 a = _mm256_fmadd_ps(xb[0], _mm256_maskload_ps(wr[0] + o, m), _mm256_maskload_ps(y + o, m));
      a = _mm256_fmadd_ps(xb[1], _mm256_maskload_ps(wr[1] + o, m), a);
      a = _mm256_fmadd_ps(xb[2], _mm256_maskload_ps(wr[2] + o, m), a);
      a = _mm256_fmadd_ps(xb[3], _mm256_maskload_ps(wr[3] + o, m), a);
      _mm256_maskstore_ps(y + o, m, a);
    }
  }
}

/* R tokens (a constant in each instantiation, so the token loops unroll into registers) from
 * token t0 of the call's `rows`, x 24 outputs from column o. */
T static inline __attribute__((always_inline)) void block(const size_t R, size_t rows, size_t t0, size_t n, size_t o,
                                                          size_t nk, const uint32_t* idx, const float* xv,
                                                          const float* w, size_t w_stride, float* y, size_t y_stride) {
  const int full = n - o >= 24;
  const __m256i m0 = tail_mask(n - o), m1 = tail_mask(n - o > 8 ? n - o - 8 : 0);
  const __m256i m2 = tail_mask(n - o > 16 ? n - o - 16 : 0);
  __m256 acc[4][3];
  for (size_t t = 0; t < R; t++) acc[t][0] = acc[t][1] = acc[t][2] = _mm256_setzero_ps();
  for (size_t j = 0; j < nk; j++) {
    const float* r = ROW(j) + o;
    if (j + 4 < nk) {
      const char* p = (const char*)(ROW(j + 4) + o);
      _mm_prefetch(p, _MM_HINT_T0);
      _mm_prefetch(p + 64, _MM_HINT_T0);
    }
    __m256 w0, w1, w2;
    if (full) {
      w0 = _mm256_loadu_ps(r), w1 = _mm256_loadu_ps(r + 8), w2 = _mm256_loadu_ps(r + 16);
    } else {
      w0 = _mm256_maskload_ps(r, m0), w1 = _mm256_maskload_ps(r + 8, m1), w2 = _mm256_maskload_ps(r + 16, m2);
    }
    const float* x = xv + j * rows + t0;
    for (size_t t = 0; t < R; t++) {
      const __m256 b = _mm256_broadcast_ss(x + t);
      acc[t][0] = _mm256_fmadd_ps(b, w0, acc[t][0]);
      acc[t][1] = _mm256_fmadd_ps(b, w1, acc[t][1]);
      acc[t][2] = _mm256_fmadd_ps(b, w2, acc[t][2]);
    }
  }
  for (size_t t = 0; t < R; t++) {
    float* yt = (float*)((char*)y + (t0 + t) * y_stride) + o;
    _mm256_maskstore_ps(yt, m0, _mm256_add_ps(acc[t][0], _mm256_maskload_ps(yt, m0)));
    _mm256_maskstore_ps(yt + 8, m1, _mm256_add_ps(acc[t][1], _mm256_maskload_ps(yt + 8, m1)));
    _mm256_maskstore_ps(yt + 16, m2, _mm256_add_ps(acc[t][2], _mm256_maskload_ps(yt + 16, m2)));
  }
}

#define BLOCKS(R)                                                                                             \
  T static void blocks_##R(size_t rows, size_t t0, size_t n, size_t nk, const uint32_t* idx, const float* xv, \
                           const float* w, size_t w_stride, float* y, size_t y_stride) {                      \
    for (size_t o = 0; o < n; o += 24) block(R, rows, t0, n, o, nk, idx, xv, w, w_stride, y, y_stride);       \
  }
BLOCKS(1)
BLOCKS(2)
BLOCKS(3)
BLOCKS(4)

T void sparrow_gatedk_dense_f32_4x24__avx2(size_t rows, size_t n, size_t nk, const uint32_t* idx, const float* xv,
                                           const float* w, size_t w_stride, float* y, size_t y_stride) {
  if (rows == 1) {
    one_token(n, nk, idx, xv, w, w_stride, y);
    return;
  }
  for (size_t t0 = 0; t0 < rows; t0 += 4) {
    switch (rows - t0 < 4 ? rows - t0 : 4) {
      case 1:
        blocks_1(rows, t0, n, nk, idx, xv, w, w_stride, y, y_stride);
        break;
      case 2:
        blocks_2(rows, t0, n, nk, idx, xv, w, w_stride, y, y_stride);
        break;
      case 3:
        blocks_3(rows, t0, n, nk, idx, xv, w, w_stride, y, y_stride);
        break;
      default:
        blocks_4(rows, t0, n, nk, idx, xv, w, w_stride, y, y_stride);
        break;
    }
  }
}
#endif
