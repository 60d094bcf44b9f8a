/* Input-gated dense K-major product, NEON (gate.h).
 * Several tokens: register blocks of up to 4 tokens x 16 outputs (four vectors), 16
 * accumulators kept over every kept input and added into y once (a call of 5-8 tokens runs two
 * passes); a partial block of outputs goes through a zero-padded copy of its accumulators.
 * One token (the matrix-vector shape): kept weight rows four at a time streamed across the whole
 * output row, which stays in L1; the output tail is scalar. */
#if defined(__aarch64__)
#include <arm_neon.h>

#include "gate.h"

#define ROW(j) ((const float*)((const char*)w + (size_t)idx[j] * w_stride))

static void one_token(size_t n, size_t nk, const uint32_t* idx, const float* xv, const float* w, size_t w_stride,
                      float* y) {
  for (size_t j = 0; j < nk; j += 4) {
    const size_t g = nk - j < 4 ? nk - j : 4;
    /* A short last group repeats its first row with a zero factor: one loop for every group. */
    const float* wr[4];
    float xs[4];
    for (size_t q = 0; q < 4; q++) {
      wr[q] = ROW(j + (q < g ? q : 0));
      xs[q] = q < g ? xv[j + q] : 0.0f;
    }
    size_t o = 0;
    for (; o + 4 <= n; o += 4) {
      float32x4_t a = vfmaq_n_f32(vld1q_f32(y + o), vld1q_f32(wr[0] + o), xs[0]);
      a = vfmaq_n_f32(a, vld1q_f32(wr[1] + o), xs[1]);
      a = vfmaq_n_f32(a, vld1q_f32(wr[2] + o), xs[2]);
      a = vfmaq_n_f32(a, vld1q_f32(wr[3] + o), xs[3]);
      vst1q_f32(y + o, a);
    }
    for (; o < n; o++) y[o] += xs[0] * wr[0][o] + xs[1] * wr[1][o] + xs[2] * wr[2][o] + xs[3] * wr[3][o];
  }
}

/* R tokens (a constant per instantiation) from token t0 of the call's `rows`, 16 outputs from o
 * (all 16 in range). */
static inline __attribute__((always_inline)) void block(const size_t R, size_t rows, size_t t0, size_t o, size_t nk,
                                                        const uint32_t* idx, const float* xv, const float* w,
                                                        size_t w_stride, float32x4_t acc[4][4]) {
  for (size_t t = 0; t < R; t++) acc[t][0] = acc[t][1] = acc[t][2] = acc[t][3] = vdupq_n_f32(0.0f);
  for (size_t j = 0; j < nk; j++) {
    const float* r = ROW(j) + o;
    const float32x4_t w0 = vld1q_f32(r), w1 = vld1q_f32(r + 4), w2 = vld1q_f32(r + 8), w3 = vld1q_f32(r + 12);
    const float* x = xv + j * rows + t0;
    for (size_t t = 0; t < R; t++) {
      const float b = x[t];
      acc[t][0] = vfmaq_n_f32(acc[t][0], w0, b);
      acc[t][1] = vfmaq_n_f32(acc[t][1], w1, b);
      acc[t][2] = vfmaq_n_f32(acc[t][2], w2, b);
      acc[t][3] = vfmaq_n_f32(acc[t][3], w3, b);
    }
  }
}

#define BLOCKS(R)                                                                                           \
  static void blocks_##R(size_t rows, size_t t0, size_t n, size_t nk, const uint32_t* idx, const float* xv, \
                         const float* w, size_t w_stride, float* y, size_t y_stride) {                      \
    float32x4_t acc[4][4];                                                                                  \
    size_t o = 0;                                                                                           \
    for (; o + 16 <= n; o += 16) {                                                                          \
      block(R, rows, t0, o, nk, idx, xv, w, w_stride, acc);                                                 \
      for (size_t t = 0; t < R; t++) {                                                                      \
        float* yt = (float*)((char*)y + (t0 + t) * y_stride) + o;                                           \
        for (size_t v = 0; v < 4; v++) vst1q_f32(yt + 4 * v, vaddq_f32(acc[t][v], vld1q_f32(yt + 4 * v)));  \
      }                                                                                                     \
    }                                                                                                       \
    if (o < n) tail(rows, t0, R, n, o, nk, idx, xv, w, w_stride, y, y_stride);                              \
  }

/* The last n - o < 16 outputs: plain loops (never reads past a row's end). */
static void tail(size_t rows, size_t t0, size_t R, size_t n, size_t o, size_t nk, const uint32_t* idx, const float* xv,
                 const float* w, size_t w_stride, float* y, size_t y_stride) {
  for (size_t t = 0; t < R; t++) {
    float acc[16] = {0};
    for (size_t j = 0; j < nk; j++) {
      const float* r = ROW(j);
      const float x = xv[j * rows + t0 + t];
      for (size_t c = o; c < n; c++) acc[c - o] += x * r[c];
    }
    float* yt = (float*)((char*)y + (t0 + t) * y_stride);
    for (size_t c = o; c < n; c++) yt[c] += acc[c - o];
  }
}
BLOCKS(1)
BLOCKS(2)
BLOCKS(3)
BLOCKS(4)

void sparrow_gatedk_dense_f32_4x16__neon(size_t rows, size_t n, size_t nk, const uint32_t* idx, const float* xv,
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
