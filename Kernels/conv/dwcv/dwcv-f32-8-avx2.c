/* Channels-in-lanes depthwise, AVX2 + FMA: 8 channels per vector (dwcv.h). */
#if defined(__x86_64__)
#include "dwcv.h"

typedef float v8f __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));
#define CLAMP8(v, lo, hi) SPARROW_DWCV_CLAMP_VEC(v8i, v, lo, hi)

__attribute__((target("avx2,fma"))) void sparrow_dwcv_f32_8__avx2(const sparrow_dwcv_args* a) {
  SPARROW_DWCV_BODY(v8f, 8, CLAMP8)
}
#endif
