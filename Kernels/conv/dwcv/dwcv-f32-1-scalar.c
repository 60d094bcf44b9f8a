/* Channels-in-lanes depthwise, scalar: one channel per "vector" (dwcv.h). */
#include "dwcv.h"

#define CLAMP1(v, lo, hi) ((v) < (lo) ? (lo) : ((v) > (hi) ? (hi) : (v)))

void sparrow_dwcv_f32_1__scalar(const sparrow_dwcv_args* a) { SPARROW_DWCV_BODY(float, 1, CLAMP1) }
