/* The one parallel loop of the library: every OpenMP region is this one. Drivers split their
 * work into independent tasks (parallel/spmm.c tiles, dense/gemm.c column or row slices,
 * conv/dwconv.c channel ranges, conv/direct.c padding and row chunks) and hand them here, or to
 * Swift's runner (Sources/Sparrow/Kernels/TileRunner.swift), which runs the same task
 * functions on OpenMP through this loop or on DispatchQueue.concurrentPerform. */
#include <stdatomic.h>

#include "sparrow_kernels.h"

int sparrow_has_openmp(void) {
#ifdef _OPENMP
  return 1;
#else
  return 0;
#endif
}

void sparrow_parallel_for(size_t tasks, int threads, sparrow_task_fn task, void* context) {
#ifdef _OPENMP
  if (threads > 1 && tasks > 1) {
    /* Each thread takes the next task from a shared counter, so uneven tasks balance out. Not
     * `omp for schedule(dynamic)`: Swift's clang 21 emits __kmpc_dispatch_deinit for it, which
     * Debian's libomp 14 lacks. */
    atomic_size_t next = 0;
    const int nt = (size_t)threads < tasks ? threads : (int)tasks;
#pragma omp parallel num_threads(nt)
    for (size_t t; (t = atomic_fetch_add_explicit(&next, 1, memory_order_relaxed)) < tasks;) task(context, t);
    return;
  }
#else
  (void)threads;
#endif
  for (size_t t = 0; t < tasks; t++) task(context, t);
}
