/* Channels-in-lanes depthwise, AVX-512F: 16 channels per vector (dwcv.h). */
#if defined(__x86_64__)
#include "dwcv.h"

typedef float v16f __attribute__((vector_size(64)));
typedef int v16i __attribute__((vector_size(64)));
#define CLAMP16(v, lo, hi) SPARROW_DWCV_CLAMP_VEC(v16i, v, lo, hi)

__attribute__((target("avx512f,avx2,fma"))) void sparrow_dwcv_f32_16__avx512f(const sparrow_dwcv_args* a) {
  SPARROW_DWCV_BODY(v16f, 16, CLAMP16)
}
#endif
