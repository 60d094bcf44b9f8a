/* The one parallel loop of the library: every OpenMP region is this one, and by default it hands
 * the tasks to Sparrow's pool (pool.c). Drivers split their work into independent tasks
 * (parallel/spmm.c tiles, dense/gemm.c column or row slices, conv/dwconv.c channel ranges,
 * conv/direct.c padding and row chunks) and hand them here, or to Swift's runner
 * (Sources/Sparrow/Kernels/TileRunner.swift), which runs the same task functions on the pool,
 * on OpenMP through this loop, or on DispatchQueue.concurrentPerform. */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* sched_getcpu, sched_setaffinity */
#endif
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

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

#if defined(_OPENMP) && defined(__linux__)
#include <sched.h>
int omp_get_thread_num(void);

/* Threads that share a CPU (Linux). Seen on the 2-core development VMs: in about one process in
 * three, libomp's worker started on the CPU of the calling thread and the kernel never moved
 * either, for the process's whole life: both threads on one CPU, the worker spinning, the
 * "2-thread" run slower than one thread (ResNet-18's stem 2.9 ms against 1.4 with the threads
 * apart; pinning every thread with OMP_PROC_BIND cured it). Pinning the calling thread is not an
 * option (every Swift thread that calls in, a server's request threads among them, would be tied
 * to the first CPU), so the loop only watches: each region, every team member notes its CPU;
 * after it, the calling thread finds workers sitting on a CPU an earlier member has and asks each
 * to move to a CPU of the process's mask that no member uses, which the worker does at the start
 * of the next region by pinning itself there (sched_setaffinity on its own thread). Workers stay
 * apart from then on and the unpinned caller is balanced around them by the kernel. Off when the
 * user places threads (OMP_PROC_BIND, OMP_PLACES, KMP_AFFINITY, GOMP_CPU_AFFINITY) or sets
 * SPARROW_SPREAD_THREADS=0. */
#define SPREAD_MAX 64
typedef struct {
  int cpu[SPREAD_MAX];  /* each member's CPU in the last region, -1 unknown */
  int move[SPREAD_MAX]; /* a CPU the worker is asked to pin itself to, -1 none */
} spread_state;
static _Thread_local spread_state spread;
static _Thread_local int spread_ready = 0;
static int spread_enabled(void) {
  static atomic_int enabled = -1;
  int e = atomic_load_explicit(&enabled, memory_order_relaxed);
  if (e < 0) {
    const char* off = getenv("SPARROW_SPREAD_THREADS");
    e = !(off != NULL && off[0] == '0') && getenv("OMP_PROC_BIND") == NULL && getenv("OMP_PLACES") == NULL &&
        getenv("KMP_AFFINITY") == NULL && getenv("GOMP_CPU_AFFINITY") == NULL;
    atomic_store_explicit(&enabled, e, memory_order_relaxed);
  }
  return e;
}

/* In the region, member `me`: pin to a CPU if asked, then note where it runs. */
static void spread_enter(spread_state* st, int me) {
  if (me >= SPREAD_MAX) return;
  if (me > 0 && st->move[me] >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(st->move[me], &set);
    (void)sched_setaffinity(0, sizeof set, &set); /* a failure leaves it where it was */
    st->move[me] = -1;
  }
  st->cpu[me] = sched_getcpu();
}

/* After the region, on the calling thread: ask each worker that shares a CPU to move. */
static void spread_check(spread_state* st, int nt) {
  if (nt > SPREAD_MAX) nt = SPREAD_MAX;
  cpu_set_t mask;
  int have_mask = 0; /* the mask (a system call) only once a worker shares a CPU: regions are many */
  for (int i = 1; i < nt; i++) {
    int shared = 0;
    for (int j = 0; j < i && !shared; j++) shared = st->cpu[i] >= 0 && st->cpu[i] == st->cpu[j];
    if (!shared) continue;
    if (!have_mask) {
      if (sched_getaffinity(0, sizeof mask, &mask) != 0) return;
      have_mask = 1;
    }
    for (int c = 0; c < CPU_SETSIZE; c++) {
      if (!CPU_ISSET(c, &mask)) continue;
      int used = 0;
      for (int j = 0; j < nt && !used; j++) used = st->cpu[j] == c;
      if (used) continue;
      st->move[i] = c;
      st->cpu[i] = c; /* so the next worker that shares picks another */
      break;
    }
  }
}
#endif

/* sparrow_parallel_for runs on sparrow_pool_for unless SPARROW_THREADING=openmp in a build
 * with OpenMP (read once), as Swift's runner (Threads.defaultBackend). */
static int use_pool(void) {
#ifdef _OPENMP
  static atomic_int pool = -1;
  int p = atomic_load_explicit(&pool, memory_order_relaxed);
  if (p < 0) {
    const char* s = getenv("SPARROW_THREADING");
    p = !(s != NULL && strcmp(s, "openmp") == 0);
    atomic_store_explicit(&pool, p, memory_order_relaxed);
  }
  return p;
#else
  return 1;
#endif
}

void sparrow_parallel_for(size_t tasks, int threads, sparrow_task_fn task, void* context) {
  if (threads > 1 && tasks > 1 && use_pool()) {
    sparrow_pool_for(tasks, threads, task, context);
    return;
  }
#ifdef _OPENMP
  if (threads > 1 && tasks > 1) {
    if (!blocktime_set) set_blocktime();
    /* Each thread takes the next task from a shared counter, so uneven tasks balance out. Not
     * `omp for schedule(dynamic)`: Swift's clang 21 emits __kmpc_dispatch_deinit for it, which
     * Debian's libomp 14 lacks. */
    atomic_size_t next = 0;
    const int nt = (size_t)threads < tasks ? threads : (int)tasks;
#if defined(__linux__)
    /* The calling thread's state, by pointer: inside the region a _Thread_local is each thread's. */
    spread_state* st = NULL;
    if (spread_enabled()) {
      if (!spread_ready) {
        for (int i = 0; i < SPREAD_MAX; i++) spread.cpu[i] = spread.move[i] = -1;
        spread_ready = 1;
      }
      st = &spread;
    }
#pragma omp parallel num_threads(nt)
    {
      if (st != NULL) spread_enter(st, omp_get_thread_num());
      for (size_t t; (t = atomic_fetch_add_explicit(&next, 1, memory_order_relaxed)) < tasks;) task(context, t);
    }
    if (st != NULL) spread_check(st, nt);
#else
#pragma omp parallel num_threads(nt)
    for (size_t t; (t = atomic_fetch_add_explicit(&next, 1, memory_order_relaxed)) < tasks;) task(context, t);
#endif
    return;
  }
#else
  (void)threads;
#endif
  for (size_t t = 0; t < tasks; t++) task(context, t);
}
