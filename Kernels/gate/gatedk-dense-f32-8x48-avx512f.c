/* Input-gated dense K-major product, AVX-512F (gate.h).
 * Several tokens: register blocks of the call's tokens (up to 8) x 48 outputs (three vectors),
 * 24 accumulators kept over every kept input, then added into y once: per kept input one
 * broadcast per token and three weight loads feed up to 24 multiply-adds (FMA-bound, as a dense
 * GEMM microkernel). Partial blocks load and store under mask registers.
 * One token (the matrix-vector shape): kept weight rows four at a time streamed across the whole
 * output row, which stays in L1: the product is bound by reading the weights. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "gate.h"

#define T __attribute__((target("avx512f,avx2,fma")))
#define ROW(j) ((const float*)((const char*)w + (size_t)idx[j] * w_stride))

T static __mmask16 lanes(size_t left) { return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u); }

T static void one_token(size_t n, size_t nk, const uint32_t* idx, const float* xv, const float* w, size_t w_stride,
                        float* y) {
  for (size_t j = 0; j < nk; j += 4) {
    const size_t g = nk - j < 4 ? nk - j : 4;
    /* A short last group repeats its first row with a zero factor: one loop for every group. */
    const float* wr[4];
    __m512 xb[4];
    for (size_t q = 0; q < 4; q++) {
      wr[q] = ROW(j + (q < g ? q : 0));
      xb[q] = _mm512_set1_ps(q < g ? xv[j + q] : 0.0f);
    }
    for (size_t q = 4; q < 8 && j + q < nk; q++) _mm_prefetch((const char*)ROW(j + q), _MM_HINT_T0);
    for (size_t o = 0; o < n; o += 16) {
      const __mmask16 m = lanes(n - o);
      __m512 a = _mm512_fmadd_ps(xb[0], _mm512_maskz_loadu_ps(m, wr[0] + o), _mm512_maskz_loadu_ps(m, y + o));
      a = _mm512_fmadd_ps(xb[1], _mm512_maskz_loadu_ps(m, wr[1] + o), a);
      a = _mm512_fmadd_ps(xb[2], _mm512_maskz_loadu_ps(m, wr[2] + o), a);
      a = _mm512_fmadd_ps(xb[3], _mm512_maskz_loadu_ps(m, wr[3] + o), a);
      _mm512_mask_storeu_ps(y + o, m, a);
    }
  }
}

/* R tokens (a constant in each instantiation below, so the loops over tokens unroll and the
 * accumulators live in registers) x 48 outputs from column o. */
T static inline __attribute__((always_inline)) void block(const size_t R, size_t n, size_t o, size_t nk,
                                                          const uint32_t* idx, const float* xv, const float* w,
                                                          size_t w_stride, float* y, size_t y_stride) {
  const __mmask16 m0 = lanes(n - o), m1 = n - o > 16 ? lanes(n - o - 16) : 0, m2 = n - o > 32 ? lanes(n - o - 32) : 0;
  __m512 acc[8][3];
  for (size_t t = 0; t < R; t++) acc[t][0] = acc[t][1] = acc[t][2] = _mm512_setzero_ps();
  for (size_t j = 0; j < nk; j++) {
    const float* r = ROW(j) + o;
    if (j + 4 < nk) {
      const char* p = (const char*)(ROW(j + 4) + o);
      _mm_prefetch(p, _MM_HINT_T0);
      _mm_prefetch(p + 64, _MM_HINT_T0);
      _mm_prefetch(p + 128, _MM_HINT_T0);
    }
    const __m512 w0 = _mm512_maskz_loadu_ps(m0, r), w1 = _mm512_maskz_loadu_ps(m1, r + 16);
    const __m512 w2 = _mm512_maskz_loadu_ps(m2, r + 32);
    const float* x = xv + j * R;
    for (size_t t = 0; t < R; t++) {
      const __m512 b = _mm512_set1_ps(x[t]);
      acc[t][0] = _mm512_fmadd_ps(b, w0, acc[t][0]);
      acc[t][1] = _mm512_fmadd_ps(b, w1, acc[t][1]);
      acc[t][2] = _mm512_fmadd_ps(b, w2, acc[t][2]);
    }
  }
  for (size_t t = 0; t < R; t++) {
    float* yt = (float*)((char*)y + t * y_stride) + o;
    _mm512_mask_storeu_ps(yt, m0, _mm512_add_ps(acc[t][0], _mm512_maskz_loadu_ps(m0, yt)));
    _mm512_mask_storeu_ps(yt + 16, m1, _mm512_add_ps(acc[t][1], _mm512_maskz_loadu_ps(m1, yt + 16)));
    _mm512_mask_storeu_ps(yt + 32, m2, _mm512_add_ps(acc[t][2], _mm512_maskz_loadu_ps(m2, yt + 32)));
  }
}

#define BLOCKS(R)                                                                                                      \
  T static void blocks_##R(size_t n, size_t nk, const uint32_t* idx, const float* xv, const float* w, size_t w_stride, \
                           float* y, size_t y_stride) {                                                                \
    for (size_t o = 0; o < n; o += 48) block(R, n, o, nk, idx, xv, w, w_stride, y, y_stride);                          \
  }
BLOCKS(2)
BLOCKS(3)
BLOCKS(4)
BLOCKS(5)
BLOCKS(6)
BLOCKS(7)
BLOCKS(8)

T void sparrow_gatedk_dense_f32_8x48__avx512f(size_t rows, size_t n, size_t nk, const uint32_t* idx, const float* xv,
                                              const float* w, size_t w_stride, float* y, size_t y_stride) {
  switch (rows) {
    case 1:
      one_token(n, nk, idx, xv, w, w_stride, y);
      break;
    case 2:
      blocks_2(n, nk, idx, xv, w, w_stride, y, y_stride);
      break;
    case 3:
      blocks_3(n, nk, idx, xv, w, w_stride, y, y_stride);
      break;
    case 4:
      blocks_4(n, nk, idx, xv, w, w_stride, y, y_stride);
      break;
    case 5:
      blocks_5(n, nk, idx, xv, w, w_stride, y, y_stride);
      break;
    case 6:
      blocks_6(n, nk, idx, xv, w, w_stride, y, y_stride);
      break;
    case 7:
      blocks_7(n, nk, idx, xv, w, w_stride, y, y_stride);
      break;
    default:
      blocks_8(n, nk, idx, xv, w, w_stride, y, y_stride);
      break;
  }
}
#endif
