/* Direct int8 convolution kernels (public contract: include/sparrow_qgemm.h, sparrow_qconv_*).
 *
 * Input: the tap-major planes of sparrow_qgemm_pack_conv_c4_planes, one 32-bit word per pixel
 * holding 4 channels. Output position n (= oy * wo + ox) reads, for tap t and channel group g,
 * the word at planes + 4 * (word(n) + tap_words[t] + g * group_words), word(n) = oy * row_words + ox:
 * the planes' rows and column phases make every term separable (sparrow_qconv_run in
 * dispatch/qgemm.c computes them).
 *
 * Weights: the GEMM's panels (qgemm.h) of the tap-major weights, KQ = taps * cq groups of 4,
 * group q = t * cq + g: wp[((p * KQ + q) * MR + i) * 4 + j] = W[p * MR + i][4 q + j].
 *
 * Kernels: void fn(wp, m, p0, p1, geometry, n0, n1, epilogue): panels [p0, p1), positions
 * [n0, n1); the epilogue is the GEMM's (row = output channel, column = position). */
#ifndef SPARROW_QCONV_INTERNAL_H
#define SPARROW_QCONV_INTERNAL_H
#include "../qgemm/qgemm.h"

typedef struct sparrow_qconv_geometry {
  const uint8_t* planes;
  size_t cq, taps;      /* groups of 4 input channels; taps (K = taps * cq groups, tap-major) */
  size_t group_words;   /* words between two groups' planes */
  size_t wo, row_words; /* word(n) = (n / wo) * row_words + n % wo */
  size_t tap_words[SPARROW_QCONV_MAX_TAPS];
} sparrow_qconv_geometry;

typedef void (*sparrow_qconv_fn)(const int8_t* wp, size_t m, size_t p0, size_t p1, const sparrow_qconv_geometry* g,
                                 size_t n0, size_t n1, const sparrow_qgemm_epilogue* e);

static inline size_t sparrow_qconv_word(const sparrow_qconv_geometry* g, size_t n) {
  return n / g->wo * g->row_words + n % g->wo;
}

#if defined(__aarch64__)
#include <arm_neon.h>

/* The NEON kernels' 4 positions n .. n + count - 1 (a partial tile repeats its last position):
 * their words of the planes at tap 0, group 0. */
static inline void sparrow_qconv_positions4(const sparrow_qconv_geometry* g, size_t n, size_t count,
                                            const uint8_t** x) {
  for (size_t j = 0; j < 4; j++) x[j] = g->planes + sparrow_qconv_word(g, n + (j < count ? j : count - 1)) * 4;
}

/* The 4 positions' words at byte offset o: one 16-byte load when they lie in one output row
 * (consecutive words), else 4 lane loads. */
static inline __attribute__((always_inline)) uint8x16_t sparrow_qconv_words4(const uint8_t* const* x, size_t o,
                                                                             const int contiguous) {
  if (contiguous) return vld1q_u8(x[0] + o);
  int32x4_t v = vdupq_n_s32(sparrow_qgemm_word(x[0] + o));
  v = vsetq_lane_s32(sparrow_qgemm_word(x[1] + o), v, 1);
  v = vsetq_lane_s32(sparrow_qgemm_word(x[2] + o), v, 2);
  v = vsetq_lane_s32(sparrow_qgemm_word(x[3] + o), v, 3);
  return vreinterpretq_u8_s32(v);
}
#endif
#endif
