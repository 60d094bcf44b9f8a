/* The activation packer's inner step (qgemm.h's X layout: the 4 k of a column side by side):
 * out[4 i + j] = r[j][step * i] ^ flip for j < 4 and i below the returned count, the rest left to
 * the caller. The scalar entry does none (returns 0); the SIMD ones do blocks of 16 columns for
 * step 1 and 2 (other steps: 0) and never read past r[j][step * (n - 1)]. Code that runs under any
 * ISA calls the entry the dispatcher hands out (sparrow_dispatch_interleave4, dispatch/qgemm.c). */
#ifndef SPARROW_QGEMM_INTERLEAVE_H
#define SPARROW_QGEMM_INTERLEAVE_H
#include <stddef.h>
#include <stdint.h>

typedef size_t (*sparrow_interleave4_fn)(uint8_t* out, const uint8_t* const r[4], size_t n, size_t step, uint8_t flip);
size_t sparrow_interleave_u8_4x1__scalar(uint8_t* out, const uint8_t* const r[4], size_t n, size_t step, uint8_t flip);
#if defined(__x86_64__)
size_t sparrow_interleave_u8_4x16__avx2(uint8_t* out, const uint8_t* const r[4], size_t n, size_t step, uint8_t flip);
#endif
#if defined(__aarch64__)
size_t sparrow_interleave_u8_4x16__neon(uint8_t* out, const uint8_t* const r[4], size_t n, size_t step, uint8_t flip);
#endif
sparrow_interleave4_fn sparrow_dispatch_interleave4(void);
#endif
