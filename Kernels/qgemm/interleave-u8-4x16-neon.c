/* Activation packer step (interleave.h), NEON: 16 columns of 4 rows per step, st4 interleaves;
 * stride 2 takes the even bytes of ld2. */
#if defined(__aarch64__)
#include <arm_neon.h>

#include "interleave.h"

size_t sparrow_interleave_u8_4x16__neon(uint8_t* out, const uint8_t* const r[4], size_t n, size_t step, uint8_t flip) {
  if (step != 1 && step != 2) return 0;
  const uint8x16_t f = vdupq_n_u8(flip);
  size_t i = 0;
  for (; step == 1 ? i + 16 <= n : i + 16 < n; i += 16) {
    uint8x16x4_t v;
    for (int j = 0; j < 4; j++) {
      const uint8_t* p = r[j] + step * i;
      v.val[j] = veorq_u8(step == 1 ? vld1q_u8(p) : vld2q_u8(p).val[0], f);
    }
    vst4q_u8(out + 4 * i, v);
  }
  return i;
}
#endif
