/* Sparrow's own thread pool (sparrow_pool_for, sparrow_kernels.h): the caller and up to
 * threads - 1 persistent workers take tasks from one shared counter, and the caller waits only
 * for the tasks that were taken, never for a worker that has not started. An OpenMP region ends
 * in a barrier that waits for every team member: on a shared machine, where another process or
 * virtual machine holds one of the CPUs, each region then waits out the late worker's time
 * slice (ResNet-18 at 2 threads with a busy loop on the second CPU: 68-84 ms, against 26 on one
 * thread and ONNX Runtime's 25). Here the caller drains the counter alone when its worker is
 * away, so such a run costs about one thread's time.
 *
 * One job at a time: a second caller while a job runs (another session's thread), or a task
 * that calls in again, runs its tasks on its own thread. Workers spin for about a millisecond
 * after a job (within one inference the gap to the next is microseconds), then sleep on a
 * condition variable until the next job: the pool spins only while work keeps coming. */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "sparrow_kernels.h"

#define POOL_MAX_WORKERS 63
/* The claim word: job generation (24 bits), next task (20 bits), task count (20 bits). A worker
 * takes task `next` by a compare-and-swap on the whole word, so a stale worker (one that read an
 * older job) can never take a task of a newer one. */
#define GEN_SHIFT 40
#define NEXT_SHIFT 20
#define FIELD_MASK ((UINT64_C(1) << 20) - 1)
#define POOL_MAX_TASKS FIELD_MASK

static _Atomic uint64_t claim_word;
static _Atomic(sparrow_task_fn) job_fn;
static _Atomic(void*) job_ctx;
static atomic_int job_workers; /* workers 1..job_workers may join */
static atomic_size_t job_done; /* tasks finished in the current job */
static atomic_flag busy = ATOMIC_FLAG_INIT;
static atomic_int sleepers;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static atomic_int started; /* workers created (written under mu) */

static uint64_t gen_of(uint64_t c) { return c >> GEN_SHIFT; }
static size_t next_of(uint64_t c) { return (size_t)((c >> NEXT_SHIFT) & FIELD_MASK); }
static size_t tasks_of(uint64_t c) { return (size_t)(c & FIELD_MASK); }

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

static double seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Takes and runs tasks of job `gen` until none is left (or a newer job replaced it). fn and ctx
 * are read after the claim word showed `gen`; a successful claim proves the job was still open,
 * so they were not yet overwritten by the next job's. */
static void drain(uint64_t gen) {
  const sparrow_task_fn fn = atomic_load_explicit(&job_fn, memory_order_relaxed);
  void* ctx = atomic_load_explicit(&job_ctx, memory_order_relaxed);
  uint64_t c = atomic_load_explicit(&claim_word, memory_order_acquire);
  for (;;) {
    if (gen_of(c) != gen || next_of(c) >= tasks_of(c)) return;
    if (!atomic_compare_exchange_weak_explicit(&claim_word, &c, c + (UINT64_C(1) << NEXT_SHIFT), memory_order_acq_rel,
                                               memory_order_acquire))
      continue;
    fn(ctx, next_of(c));
    atomic_fetch_add_explicit(&job_done, 1, memory_order_release);
    c = atomic_load_explicit(&claim_word, memory_order_acquire);
  }
}

static void* worker(void* arg) {
  const int me = (int)(intptr_t)arg;
  uint64_t seen = gen_of(atomic_load_explicit(&claim_word, memory_order_acquire));
  for (;;) {
    uint64_t c = atomic_load_explicit(&claim_word, memory_order_acquire);
    if (gen_of(c) == seen) {
      /* Spin about a millisecond, then sleep until a new job is published. */
      const double until = seconds() + 1e-3;
      for (unsigned n = 1;; n++) {
        cpu_relax();
        c = atomic_load_explicit(&claim_word, memory_order_acquire);
        if (gen_of(c) != seen) break;
        /* Every 256 turns: yield, so a worker placed on its caller's CPU does not spin the
         * caller off it (the kernel then runs the caller; on a free CPU it returns at once). */
        if ((n & 255) == 0) sched_yield();
        if ((n & 255) == 0 && seconds() > until) {
          pthread_mutex_lock(&mu);
          atomic_fetch_add(&sleepers, 1);
          while (gen_of(c = atomic_load(&claim_word)) == seen) pthread_cond_wait(&cv, &mu);
          atomic_fetch_sub(&sleepers, 1);
          pthread_mutex_unlock(&mu);
          break;
        }
      }
    }
    seen = gen_of(c);
    if (me <= atomic_load_explicit(&job_workers, memory_order_relaxed)) drain(seen);
  }
  return NULL;
}

/* Starts workers up to `n` (under mu); returns how many run. Once they run, no lock is taken
 * (a process forked while a worker held mu would otherwise block here forever). */
static int ensure_workers(int n) {
  if (n > POOL_MAX_WORKERS) n = POOL_MAX_WORKERS;
  const int have_now = atomic_load(&started);
  if (have_now >= n) return n;
  pthread_mutex_lock(&mu);
  while (atomic_load(&started) < n) {
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    const int ok = pthread_create(&t, &attr, worker, (void*)(intptr_t)(atomic_load(&started) + 1)) == 0;
    pthread_attr_destroy(&attr);
    if (!ok) break;
    atomic_fetch_add(&started, 1);
  }
  const int have = atomic_load(&started);
  pthread_mutex_unlock(&mu);
  return have < n ? have : n;
}

void sparrow_pool_for(size_t tasks, int threads, sparrow_task_fn task, void* context) {
  if (threads <= 1 || tasks <= 1 || tasks > POOL_MAX_TASKS || atomic_flag_test_and_set(&busy)) {
    for (size_t t = 0; t < tasks; t++) task(context, t);
    return;
  }
  const int workers = ensure_workers(threads - 1);
  atomic_store_explicit(&job_fn, task, memory_order_relaxed);
  atomic_store_explicit(&job_ctx, context, memory_order_relaxed);
  atomic_store_explicit(&job_workers, workers, memory_order_relaxed);
  atomic_store_explicit(&job_done, 0, memory_order_relaxed);
  const uint64_t gen = (gen_of(atomic_load(&claim_word)) + 1) & ((UINT64_C(1) << (64 - GEN_SHIFT)) - 1);
  atomic_store(&claim_word, (gen << GEN_SHIFT) | (uint64_t)tasks); /* seq_cst: against sleepers */
  /* Wake sleepers. If mu is held, its holder is a worker between deciding to sleep and waiting
   * (it re-checks the generation under mu and will not wait) or just woken: no broadcast is
   * needed for it, and none blocks here (nor in a process forked while a worker held mu). */
  if (atomic_load(&sleepers) > 0 && pthread_mutex_trylock(&mu) == 0) {
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
  }
  drain(gen);
  /* Only tasks already taken remain: wait for those, not for workers that never came. */
  while (atomic_load_explicit(&job_done, memory_order_acquire) < tasks) cpu_relax();
  atomic_flag_clear(&busy);
}
