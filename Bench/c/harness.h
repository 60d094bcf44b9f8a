/* Helpers shared by the Bench/c harnesses: a seeded generator, a monotonic clock, a median sort
 * and 64-byte-aligned buffers (with a spare line). */
#ifndef SPARROW_BENCH_HARNESS_H
#define SPARROW_BENCH_HARNESS_H
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

static uint64_t harness_state = 7;
/* Uniform in [-1, 1). */
static inline float rnd(void) {
  harness_state = harness_state * 6364136223846793005ULL + 1442695040888963407ULL;
  return (float)((harness_state >> 11) / 9007199254740992.0) * 2 - 1;
}
static inline double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}
static inline int cmpd(const void* a, const void* b) {
  const double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}
static inline void* alloc64(size_t bytes) { return aligned_alloc(64, (bytes + 127) / 64 * 64); }
#endif
