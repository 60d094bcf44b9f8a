/* Prefetching an N:M matrix's values and indices in the x86 1xN kernels (AVX2 1x64, AVX-512
 * 1x128). Weights stream from memory once per panel; with few columns more than one core's
 * DRAM bandwidth keeps up with unaided, so every 8 groups the kernels ask for the entries
 * ahead. With one K block a row's entries are read in order, then the next row's: the 256
 * entries on. With several blocks a row is read one block at a time (a block's groups, then
 * the next row's), and the bytes after these belong to later blocks: the same groups NM_AHEAD
 * rows on, where the next passes read. Measured on MiniLM's feed-forward layers in the model
 * (Zen 5, AVX-512, 1 thread): 0.60-0.69 -> 0.46-0.55 ms a layer (rows ahead 1: no gain; 3, 6,
 * 10, 16: alike). */
#ifndef SPARROW_NM_PREFETCH_H
#define SPARROW_NM_PREFETCH_H
#if defined(__x86_64__)
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#ifndef NM_AHEAD
#define NM_AHEAD 6
#endif

/* Entries from row r's (unit u of [u0, u1)) to where the prefetch reads, for rows of
 * row_entries entries (groups x n) in nblk K blocks. */
static inline ptrdiff_t nm_prefetch_distance(size_t nblk, const uint32_t* units, size_t u, size_t u1, size_t r,
                                             size_t row_entries) {
  if (nblk == 1) return 256;
  const size_t ua = u1 - u > NM_AHEAD ? u + NM_AHEAD : u1 - 1;
  return ((ptrdiff_t)(units != NULL ? units[ua] : ua) - (ptrdiff_t)r) * (ptrdiff_t)row_entries;
}

/* Values and indices PF entries on (PF: nm_prefetch_distance's, in scope). */
#define NM_PREFETCH(VAL, IDX)                             \
  do {                                                    \
    _mm_prefetch((const char*)((VAL) + pf), _MM_HINT_T0); \
    _mm_prefetch((const char*)((IDX) + pf), _MM_HINT_T0); \
  } while (0)

#endif
#endif
