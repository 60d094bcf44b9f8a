/* The stride-2 row gathers the dispatcher hands to ISA-neutral code (im2col, padded planes). */
#include "even.h"

size_t sparrow_even_f32__scalar(float* out, const float* src, size_t n) {
  (void)out, (void)src, (void)n;
  return 0;
}

#if defined(__x86_64__)
__attribute__((target("avx2"))) size_t sparrow_even_f32__avx2(float* out, const float* src, size_t n) {
  return sparrow_even_avx2(out, src, n);
}
#endif
