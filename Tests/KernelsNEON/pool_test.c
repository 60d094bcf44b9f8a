/* Sparrow's thread pool (Kernels/parallel/pool.c): every task of every job runs exactly once,
 * over jobs of 1 to 3000 tasks on 1 to 5 threads back to back (workers spinning) and after
 * pauses (workers asleep), with a task that calls in again (run on its thread), and from two
 * callers at once (one job at a time: the other runs its own tasks). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "neon_test.h"
#include "sparrow_kernels.h"

typedef struct {
  atomic_int* hits;
  size_t tasks;
  int nested;
} pool_job;

static void count_task(void* ctx, size_t t) {
  const pool_job* j = ctx;
  if (t < j->tasks) atomic_fetch_add(&j->hits[t], 1);
  if (j->nested && t == 0) {
    /* A task that calls in again: its inner job runs, every inner task once. */
    atomic_int inner[7];
    for (int i = 0; i < 7; i++) atomic_init(&inner[i], 0);
    pool_job in = {inner, 7, 0};
    sparrow_pool_for(7, 3, count_task, &in);
    for (int i = 0; i < 7; i++)
      if (atomic_load(&inner[i]) != 1) atomic_fetch_add(&j->hits[0], 100);
  }
}

/* Runs one job and checks it; returns 1 when every task ran once. */
static int run_job(size_t tasks, int threads, int nested) {
  atomic_int* hits = malloc(tasks * sizeof(atomic_int));
  for (size_t t = 0; t < tasks; t++) atomic_init(&hits[t], 0);
  pool_job j = {hits, tasks, nested};
  sparrow_pool_for(tasks, threads, count_task, &j);
  int ok = 1;
  for (size_t t = 0; t < tasks && ok; t++) ok = atomic_load(&hits[t]) == 1;
  free(hits);
  return ok;
}

static void* other_caller(void* arg) {
  atomic_int* bad = arg;
  for (int i = 0; i < 300; i++)
    if (!run_job(1 + (size_t)(i * 37) % 200, 2 + i % 3, 0)) atomic_fetch_add(bad, 1);
  return NULL;
}

void test_pool(uint64_t seed, long cases) {
  uint64_t s = seed ^ 0x9001ull;
  const size_t passed_before = g_passed;
  for (long i = 0; i < cases; i++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    const size_t tasks = 1 + (size_t)((s >> 33) % 3000);
    const int threads = 1 + (int)((s >> 20) % 5);
    snprintf(g_case, sizeof g_case, "pool: %zu tasks on %d threads", tasks, threads);
    if (i % 50 == 49) { /* a pause: the workers go to sleep and must wake for the next job */
      struct timespec ts = {0, 3000000};
      nanosleep(&ts, NULL);
    }
    if (run_job(tasks, threads, i % 7 == 3))
      g_passed++;
    else
      fail("a task ran other than once");
  }
  snprintf(g_case, sizeof g_case, "pool: two callers at once");
  atomic_int bad;
  atomic_init(&bad, 0);
  pthread_t t;
  if (pthread_create(&t, NULL, other_caller, &bad) != 0) {
    fail("no second thread");
  } else {
    other_caller(&bad);
    pthread_join(t, NULL);
    if (atomic_load(&bad) != 0)
      fail("%d jobs ran a task other than once", atomic_load(&bad));
    else
      g_passed++;
  }
  g_case[0] = 0;
  printf("  %-34s %6zu checks passed\n", "thread pool", g_passed - passed_before);
}
