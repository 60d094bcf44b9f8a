/* N:M x dense with a shared pattern (formats.h), NEON: a block of 8 rows x 8 columns per pass
 * (16 float32x4 accumulators, the dense 8x8 kernel's register block): per kept pair, two
 * 4-float loads of its X row and of the block's 8 values, sixteen FMAs by lane. Columns past
 * the last multiple of 8 run 1 at a time. Pairs past K (padding of a partial last group, zero
 * in every row) and masked-out X rows are skipped, never read. */
#if defined(__aarch64__)
#include <arm_neon.h>

#include "../../pack/formats.h"

#define R SPARROW_NM_SHARED_ROWS

static inline float32x4_t clamp4(float32x4_t v, float b, float32x4_t lo, float32x4_t hi) {
  return vminq_f32(vmaxq_f32(vaddq_f32(v, vdupq_n_f32(b)), lo), hi);
}

void sparrow_spmm_nm_f32_8x8__neon(const sparrow_matrix* w, const uint32_t* units, size_t u0, size_t u1,
                                   const sparrow_ukernel_args* a) {
  const sparrow_nm* s = &w->u.nm;
  const size_t S = s->stride, G = s->groups, N = s->n, M = w->m, K = w->k, MS = (size_t)s->m * S;
  const size_t n = a->n, xs = a->x_stride / sizeof(float), ys = a->y_stride / sizeof(float);
  const uint8_t* km = a->k_mask;
  const float32x4_t lo = vdupq_n_f32(a->lo), hi = vdupq_n_f32(a->hi);
  size_t u = u0;
  while (u < u1) {
    const size_t b = (units != NULL ? units[u] : u) / R;
    unsigned rows = 0;
    for (; u < u1; u++) {
      const size_t r = units != NULL ? units[u] : u;
      if (r / R != b) break;
      if (r < M) rows |= 1u << (r % R);
    }
    const float* wb = s->shared_values + b * G * N * R;
    const uint8_t* ib = s->shared_idx + b * G * N;
    size_t j0 = 0;
    for (; j0 + 8 <= n; j0 += 8) {
      float32x4_t c[16];
      for (int i = 0; i < 16; i++) c[i] = vdupq_n_f32(0.0f);
      const float* wv = wb;
      const uint8_t* ix = ib;
      for (size_t g = 0; g < G; g++)
        for (size_t q = 0; q < N; q++, wv += R, ix++) {
          const size_t col = (g / S) * MS + g % S + (size_t)*ix * S;
          if (col >= K || (km != NULL && !km[col])) continue;
          const float* xr = a->x + col * xs + j0;
          const float32x4_t x0 = vld1q_f32(xr), x1 = vld1q_f32(xr + 4);
          const float32x4_t w0 = vld1q_f32(wv), w1 = vld1q_f32(wv + 4);
          c[0] = vfmaq_laneq_f32(c[0], x0, w0, 0);
          c[1] = vfmaq_laneq_f32(c[1], x1, w0, 0);
          c[2] = vfmaq_laneq_f32(c[2], x0, w0, 1);
          c[3] = vfmaq_laneq_f32(c[3], x1, w0, 1);
          c[4] = vfmaq_laneq_f32(c[4], x0, w0, 2);
          c[5] = vfmaq_laneq_f32(c[5], x1, w0, 2);
          c[6] = vfmaq_laneq_f32(c[6], x0, w0, 3);
          c[7] = vfmaq_laneq_f32(c[7], x1, w0, 3);
          c[8] = vfmaq_laneq_f32(c[8], x0, w1, 0);
          c[9] = vfmaq_laneq_f32(c[9], x1, w1, 0);
          c[10] = vfmaq_laneq_f32(c[10], x0, w1, 1);
          c[11] = vfmaq_laneq_f32(c[11], x1, w1, 1);
          c[12] = vfmaq_laneq_f32(c[12], x0, w1, 2);
          c[13] = vfmaq_laneq_f32(c[13], x1, w1, 2);
          c[14] = vfmaq_laneq_f32(c[14], x0, w1, 3);
          c[15] = vfmaq_laneq_f32(c[15], x1, w1, 3);
        }
      for (size_t i = 0; i < R; i++) {
        if (!(rows >> i & 1)) continue;
        const size_t r = b * R + i;
        const float bias = a->bias != NULL ? a->bias[r] : 0.0f;
        float* y = a->y + r * ys + j0;
        vst1q_f32(y, clamp4(c[i * 2], bias, lo, hi));
        vst1q_f32(y + 4, clamp4(c[i * 2 + 1], bias, lo, hi));
      }
    }
    for (; j0 < n; j0++) {
      float32x4_t c0 = vdupq_n_f32(0.0f), c1 = c0;
      const float* wv = wb;
      const uint8_t* ix = ib;
      for (size_t g = 0; g < G; g++)
        for (size_t q = 0; q < N; q++, wv += R, ix++) {
          const size_t col = (g / S) * MS + g % S + (size_t)*ix * S;
          if (col >= K || (km != NULL && !km[col])) continue;
          const float xv = a->x[col * xs + j0];
          c0 = vfmaq_n_f32(c0, vld1q_f32(wv), xv);
          c1 = vfmaq_n_f32(c1, vld1q_f32(wv + 4), xv);
        }
      float out[8];
      vst1q_f32(out, c0);
      vst1q_f32(out + 4, c1);
      for (size_t i = 0; i < R; i++) {
        if (!(rows >> i & 1)) continue;
        const size_t r = b * R + i;
        const float bias = a->bias != NULL ? a->bias[r] : 0.0f;
        a->y[r * ys + j0] = sparrow_clampf(out[i] + bias, a->lo, a->hi);
      }
    }
  }
}
#endif
