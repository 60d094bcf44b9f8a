/* LD_PRELOAD shim that counts heap allocations (malloc, calloc, realloc, posix_memalign,
 * aligned_alloc, memalign) and prints the total at exit to stderr as
 * "sparrow-alloc-count: N". Tests/alloc/run.sh runs a model with two --repeat counts and
 * divides the difference: allocations per steady-state run. glibc's __libc_* entry points
 * avoid dlsym recursion. */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

extern void* __libc_malloc(size_t);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);
extern void* __libc_memalign(size_t, size_t);

static atomic_long count;

void* malloc(size_t n) { atomic_fetch_add_explicit(&count, 1, memory_order_relaxed); return __libc_malloc(n); }
void* calloc(size_t a, size_t b) { atomic_fetch_add_explicit(&count, 1, memory_order_relaxed); return __libc_calloc(a, b); }
void* realloc(void* p, size_t n) { atomic_fetch_add_explicit(&count, 1, memory_order_relaxed); return __libc_realloc(p, n); }
void* memalign(size_t a, size_t n) { atomic_fetch_add_explicit(&count, 1, memory_order_relaxed); return __libc_memalign(a, n); }
void* aligned_alloc(size_t a, size_t n) { return memalign(a, n); }
int posix_memalign(void** out, size_t a, size_t n) {
  void* p = memalign(a, n);
  if (p == NULL) return 12; /* ENOMEM */
  *out = p;
  return 0;
}

__attribute__((destructor)) static void report(void) {
  char buf[64];
  int len = snprintf(buf, sizeof buf, "sparrow-alloc-count: %ld\n", atomic_load(&count));
  if (len > 0) (void)!write(2, buf, (size_t)len);
}
