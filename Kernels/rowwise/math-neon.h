/* exp and erf on 4 floats for the NEON row kernels (included only inside
 * `#if defined(__aarch64__)`); the same constants as math-avx2.h, documented in rowwise.h. */
#ifndef SPARROW_ROWWISE_MATH_NEON_H
#define SPARROW_ROWWISE_MATH_NEON_H
#include <arm_neon.h>
#include <stddef.h>

/* e^x: exact 0 below -87.3 (and for -inf), saturates at e^88 above 88; NaN stays NaN (vmax and
 * vmin return NaN when either input is NaN). */
static inline float32x4_t sparrow_exp4_neon(float32x4_t x) {
  const float32x4_t lo = vdupq_n_f32(-87.3f);
  const float32x4_t xc = vminq_f32(vmaxq_f32(x, lo), vdupq_n_f32(88.0f));
  const int32x4_t ni = vcvtnq_s32_f32(vmulq_n_f32(xc, 1.44269504088896341f));
  const float32x4_t n = vcvtq_f32_s32(ni);
  float32x4_t r = vfmsq_f32(xc, n, vdupq_n_f32(0.693359375f));
  r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
  float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
  p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
  p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
  p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
  p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
  p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), p, vmulq_f32(r, r));
  const int32x4_t e = vshlq_n_s32(vaddq_s32(ni, vdupq_n_s32(127)), 23);
  const float32x4_t y = vmulq_f32(p, vreinterpretq_f32_s32(e));
  /* x < lo (false for NaN) gives 0. */
  return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(y), vcltq_f32(x, lo)));
}

/* erf(x): odd rational minimax approximation on (-4, 4), exactly +-1 beyond. */
static inline float32x4_t sparrow_erf4_neon(float32x4_t x) {
  const float32x4_t z = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-4.0f)), vdupq_n_f32(4.0f));
  const float32x4_t z2 = vmulq_f32(z, z);
  float32x4_t p = vdupq_n_f32(-2.72614225801306e-10f);
  p = vfmaq_f32(vdupq_n_f32(2.77068142495902e-08f), p, z2);
  p = vfmaq_f32(vdupq_n_f32(-2.10102402082508e-06f), p, z2);
  p = vfmaq_f32(vdupq_n_f32(-5.69250639462346e-05f), p, z2);
  p = vfmaq_f32(vdupq_n_f32(-7.34990630326855e-04f), p, z2);
  p = vfmaq_f32(vdupq_n_f32(-2.95459980854025e-03f), p, z2);
  p = vfmaq_f32(vdupq_n_f32(-1.60960333262415e-02f), p, z2);
  p = vmulq_f32(p, z);
  float32x4_t q = vdupq_n_f32(-1.45660718464996e-05f);
  q = vfmaq_f32(vdupq_n_f32(-2.13374055278905e-04f), q, z2);
  q = vfmaq_f32(vdupq_n_f32(-1.68282697438203e-03f), q, z2);
  q = vfmaq_f32(vdupq_n_f32(-7.37332916720468e-03f), q, z2);
  q = vfmaq_f32(vdupq_n_f32(-1.42647390514189e-02f), q, z2);
  /* Exactly +-1 from |x| = 4 on, whatever the rounding of p / q there: GELU multiplies it by x. */
  const uint32x4_t big = vcageq_f32(x, vdupq_n_f32(4.0f));
  const float32x4_t one = vreinterpretq_f32_u32(
      vorrq_u32(vandq_u32(vreinterpretq_u32_f32(x), vdupq_n_u32(0x80000000u)), vdupq_n_u32(0x3F800000u)));
  return vbslq_f32(big, one, vdivq_f32(p, q));
}

/* The first `rest` (< 4) floats of src into a vector whose other lanes are `fill`, and back. */
static inline float32x4_t sparrow_load_tail_neon(const float* src, size_t rest, float fill) {
  float b[4] = {fill, fill, fill, fill};
  for (size_t k = 0; k < rest; k++) b[k] = src[k];
  return vld1q_f32(b);
}
static inline void sparrow_store_tail_neon(float* dst, size_t rest, float32x4_t v) {
  float b[4];
  vst1q_f32(b, v);
  for (size_t k = 0; k < rest; k++) dst[k] = b[k];
}
#endif
