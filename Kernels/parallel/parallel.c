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

#ifdef _OPENMP
#include <stdlib.h>
/* libomp's extension (Swift's clang has no omp.h): how long a worker spins after a parallel
 * region before it sleeps, for the calling thread's team. */
void kmp_set_blocktime(int msec);

/* Workers spin only while work keeps coming: libomp's default keeps them spinning 200 ms after
 * every region, so on a server between requests (or beside other processes on the same cores)
 * each finished inference burned up to 200 ms of every other core. Inside one inference the gap
 * between regions is microseconds (Swift glue between steps), far below 1 ms, so the team stays
 * hot for a whole run and sleeps 1 ms after it. KMP_BLOCKTIME or OMP_WAIT_POLICY in the
 * environment win. Set once per calling thread (the setting is per team). */
static _Thread_local int blocktime_set = 0;
static void set_blocktime(void) {
  blocktime_set = 1;
  if (getenv("KMP_BLOCKTIME") == NULL && getenv("OMP_WAIT_POLICY") == NULL) kmp_set_blocktime(1);
}
#endif

void sparrow_parallel_for(size_t tasks, int threads, sparrow_task_fn task, void* context) {
#ifdef _OPENMP
  if (threads > 1 && tasks > 1) {
    if (!blocktime_set) set_blocktime();
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
