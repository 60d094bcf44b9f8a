/* The requantize/dequantize epilogue of 4 outputs in NEON (the definition is the scalar one in
 * qgemm.h: same float operations, fcvtns rounding to nearest even as nearbyintf in the default
 * rounding mode). For the NEON int8 kernels whose accumulators hold consecutive columns of a row. */
#ifndef SPARROW_QGEMM_EPILOGUE_NEON_H
#define SPARROW_QGEMM_EPILOGUE_NEON_H
#if defined(__aarch64__)
#include <arm_neon.h>

#include "qgemm.h"

/* The `count` (1-4) consecutive outputs of row m from column n0, in acc's lanes. */
static inline void sparrow_qgemm_store4_neon(const sparrow_qgemm_epilogue* e, size_t m, size_t n0, int32x4_t acc,
                                             size_t count) {
  if (count < 4 || e->y_col_stride != 1) {
    int32_t a[4];
    vst1q_s32(a, acc);
    sparrow_qgemm_store_row(e, m, n0, a, count);
    return;
  }
  int32x4_t c = vsubq_s32(acc, vdupq_n_s32((int32_t)((uint32_t)e->x_zero * (uint32_t)e->row_sums[m])));
  if (e->bias != NULL) c = vaddq_s32(c, vdupq_n_s32(e->bias[m]));
  float32x4_t v = vmulq_f32(vcvtq_f32_s32(c), vdupq_n_f32(e->scale[m]));
  const ptrdiff_t at = (ptrdiff_t)m * e->y_row_stride + (ptrdiff_t)n0;
  if (e->out == SPARROW_QOUT_F32) {
    if (e->fbias != NULL) v = vaddq_f32(v, vdupq_n_f32(e->fbias[m]));
    v = vminq_f32(vmaxq_f32(v, vdupq_n_f32(e->lo)), vdupq_n_f32(e->hi));
    vst1q_f32((float*)e->y + at, v);
    return;
  }
  v = vmaxq_f32(v, vdupq_n_f32((float)(e->q_lo - e->y_zero)));
  v = vminq_f32(v, vdupq_n_f32((float)(e->q_hi - e->y_zero)));
  /* The values are in the output type's range after the clamp: plain narrowing keeps them. */
  const int32x4_t q = vaddq_s32(vcvtnq_s32_f32(v), vdupq_n_s32(e->y_zero));
  const int16x4_t q16 = vmovn_s32(q);
  const uint32_t bytes = vget_lane_u32(vreinterpret_u32_s8(vmovn_s16(vcombine_s16(q16, q16))), 0);
  __builtin_memcpy((uint8_t*)e->y + at, &bytes, 4);
}

#endif
#endif
