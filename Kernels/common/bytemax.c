/* Byte max for MaxPool on uint8/int8 data (sparrow_kernels.h): plain loops, vectorised by the
 * compiler at the baseline ISA (pmaxub / NEON umax; a signed byte max without SSE4.1 is a compare
 * and a blend). Swift's generic SIMD of bytes ran ~30x slower than these. */
#include "sparrow_kernels.h"

void sparrow_max_u8(uint8_t* restrict d, const uint8_t* restrict s, size_t n) {
  for (size_t i = 0; i < n; i++) d[i] = d[i] > s[i] ? d[i] : s[i];
}

void sparrow_max_s8(int8_t* restrict d, const int8_t* restrict s, size_t n) {
  for (size_t i = 0; i < n; i++) d[i] = d[i] > s[i] ? d[i] : s[i];
}

void sparrow_max_even_u8(uint8_t* restrict d, const uint8_t* restrict s, size_t n) {
  for (size_t i = 0; i < n; i++) d[i] = d[i] > s[2 * i] ? d[i] : s[2 * i];
}

void sparrow_max_even_s8(int8_t* restrict d, const int8_t* restrict s, size_t n) {
  for (size_t i = 0; i < n; i++) d[i] = d[i] > s[2 * i] ? d[i] : s[2 * i];
}
