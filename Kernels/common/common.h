/* Small helpers every part of the kernel library shares: alignment, rounding, overflow-checked
 * products and the clamp of the epilogue. */
#ifndef SPARROW_COMMON_H
#define SPARROW_COMMON_H
#include <stddef.h>

/* Workspaces are carved into 64-byte aligned pieces. */
#define SPARROW_ALIGN64(x) (((x) + 63) & ~(size_t)63)

static inline size_t sparrow_div_up(size_t a, size_t b) { return (a + b - 1) / b; }

/* a * b into *out; 0 when it overflows. */
static inline int sparrow_mul_ok(size_t a, size_t b, size_t* out) { return !__builtin_mul_overflow(a, b, out); }

/* Comparisons, not fminf/fmaxf: a NaN stays NaN. */
static inline float sparrow_clampf(float v, float lo, float hi) {
  v = v < lo ? lo : v;
  return v > hi ? hi : v;
}

#endif
