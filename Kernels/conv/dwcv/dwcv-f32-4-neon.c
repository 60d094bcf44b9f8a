/* Channels-in-lanes depthwise, NEON: 4 channels per vector (dwcv.h). */
#if defined(__aarch64__)
#include "dwcv.h"

typedef float v4f __attribute__((vector_size(16)));
typedef int v4i __attribute__((vector_size(16)));
#define CLAMP4(v, lo, hi) SPARROW_DWCV_CLAMP_VEC(v4i, v, lo, hi)

void sparrow_dwcv_f32_4__neon(const sparrow_dwcv_args* a) { SPARROW_DWCV_BODY(v4f, 4, CLAMP4) }
#endif
