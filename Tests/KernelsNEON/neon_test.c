/*
 * Kernel test driver for the SpMM microkernels, independent of Swift and OpenBLAS.
 *
 * Runs every registered CSR / N:M / BSR microkernel this CPU can run (forced one by one with
 * sparrow_matrix_force_kernel, plus the automatic choice) through the public driver
 * (sparrow_spmm, or prepare/tile/finish on several pthreads) and compares each output with a
 * plain dense triple loop written here: |y - ref| <= 1e-5 + 1e-4 * |ref|. Built for aarch64 and
 * run under qemu-aarch64 (NEON kernels), and natively on the host (scalar and AVX2 kernels); see
 * run.sh. Also checks that the importers reject malformed data with the documented status.
 *
 * Usage: neon_test [--seed S] [--cases N] [--only I] [--verbose]
 * A failure prints the seed and case index; `--seed S --only I` replays just that case.
 * The last line is "<passed> passed, <failed> failed"; the exit status is non-zero on failure.
 */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include "neon_test.h"
#include "pack/formats.h"
#include "sparrow_kernels.h"

/* ---- stubs: the dense/channel path needs OpenBLAS, which this driver does not link ---------- */

void sparrow_dense_run(const sparrow_matrix* w, const sparrow_spmm_call* call, int threads) {
  (void)w, (void)call, (void)threads;
  fprintf(stderr, "sparrow_dense_run called in the kernel driver (dense formats are not tested here)\n");
  abort();
}
size_t sparrow_dense_workspace_bytes(const sparrow_matrix* w, size_t n, int has_out, int has_in) {
  (void)w, (void)n, (void)has_out, (void)has_in;
  return 0;
}
void sparrow_blas_set_threads(int threads) { (void)threads; }

/* ---- bookkeeping ------------------------------------------------------------------------------ */

static uint64_t g_seed = 0x5EED2024ull;
static long g_only = -1;
static int g_verbose = 0;
size_t g_passed = 0, g_failed = 0;
char g_case[512]; /* description of the case being run, for failure messages */
long g_case_index = -1;
static int g_scalar_only = 0; /* SPARROW_ISA=scalar on a SIMD CPU: test the scalar kernels only */
static const char* volatile g_kernel = ""; /* kernel running now, for the fault handler */

#define MAX_KERNELS 64
static size_t g_kernel_passed[MAX_KERNELS + 1]; /* last slot: automatic choice */

void fail(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  g_failed++;
  fprintf(stderr, "FAIL seed=%llu case=%ld [%s]: ", (unsigned long long)g_seed, g_case_index, g_case);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
}

/* A kernel that reads X past its end faults on a guard page: name the case before dying. */
static void on_fault(int sig) {
  char msg[700];
  const int len = snprintf(msg, sizeof msg, "FAIL seed=%llu case=%ld [%s]: kernel %s: signal %d (read past X?)\n",
                           (unsigned long long)g_seed, g_case_index, g_case, g_kernel, sig);
  if (len > 0) (void)!write(2, msg, (size_t)len < sizeof msg ? (size_t)len : sizeof msg - 1);
  _exit(3);
}

/* ---- random numbers (splitmix64) --------------------------------------------------------------- */

typedef struct { uint64_t s; } rng;
static uint64_t next_u64(rng* r) {
  uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static size_t rnd(rng* r, size_t lo, size_t hi) { return lo + (size_t)(next_u64(r) % (hi - lo + 1)); } /* [lo, hi] */
static double unit(rng* r) { return (double)(next_u64(r) >> 11) * (1.0 / 9007199254740992.0); }

/* Dyadic values make every sum exact in float whatever the order: any difference is a bug. */
static float rnd_weight(rng* r, int dyadic) {
  if (dyadic) {
    const int v = (int)rnd(r, 1, 8);
    return (float)((next_u64(r) & 1) ? v : -v) / 8.0f;
  }
  float v = (float)(unit(r) * 2.0 - 1.0);
  return v == 0.0f ? 0.5f : v;
}
static float rnd_act(rng* r, int dyadic) {
  if (dyadic) return (float)((int)rnd(r, 0, 64) - 32) / 16.0f;
  return (float)(unit(r) * 4.0 - 2.0);
}

/* ---- test cases --------------------------------------------------------------------------------- */

typedef struct {
  sparrow_format fmt;
  size_t m, k, n;
  double sparsity;            /* CSR: zero fraction; BSR: zero-block fraction */
  uint32_t nm_n, nm_m, stride; /* N:M */
  uint32_t br, bc;            /* BSR block */
  int bias;
  int clamp;                  /* 0 none, 1 ReLU, 2 ReLU6, 3 [-0.5, 0.5] */
  int out_rows, in_channels;
  size_t kpc;                 /* k_per_channel when in_channels */
  int in_kind;                /* with in_channels: 0 random subset, 1 empty, 2 all, 3 one channel */
  int threads;
  int guard;                  /* X rows end at a PROT_NONE page */
  int dyadic;
  int import;                 /* build the matrix through sparrow_import_* */
  int shared;                 /* N:M: blocks of 8 rows share their positions (formats.h) */
} test_case;

static const char* fmt_name(sparrow_format f) {
  switch (f) {
    case SPARROW_FORMAT_CSR: return "csr";
    case SPARROW_FORMAT_NM: return "nm";
    case SPARROW_FORMAT_BSR: return "bsr";
    case SPARROW_FORMAT_GEMM: return "gemm";
    default: return "?";
  }
}

static void describe(const test_case* c) {
  char extra[96] = "";
  if (c->fmt == SPARROW_FORMAT_NM) snprintf(extra, sizeof extra, " %u:%u stride %u", c->nm_n, c->nm_m, c->stride);
  if (c->fmt == SPARROW_FORMAT_BSR) snprintf(extra, sizeof extra, " block %ux%u", c->br, c->bc);
  snprintf(g_case, sizeof g_case,
           "%s%s M=%zu K=%zu N=%zu sparsity=%.2f bias=%d clamp=%d out_rows=%d in_channels=%d kpc=%zu "
           "threads=%d guard=%d dyadic=%d import=%d shared=%d",
           fmt_name(c->fmt), extra, c->m, c->k, c->n, c->sparsity, c->bias, c->clamp, c->out_rows,
           c->in_channels, c->kpc, c->threads, c->guard, c->dyadic, c->import, c->shared);
}

/* Fills W (M x K, row-major) with the case's sparsity pattern. */
static void make_weights(const test_case* c, rng* r, float* w) {
  const size_t M = c->m, K = c->k;
  memset(w, 0, M * K * sizeof(float));
  if (c->fmt == SPARROW_FORMAT_CSR || c->fmt == SPARROW_FORMAT_GEMM) { /* GEMM: dense with random zeros */
    for (size_t i = 0; i < M * K; i++)
      if (unit(r) >= c->sparsity) w[i] = rnd_weight(r, c->dyadic);
  } else if (c->fmt == SPARROW_FORMAT_BSR) {
    for (size_t r0 = 0; r0 < M; r0 += c->br)
      for (size_t k0 = 0; k0 < K; k0 += c->bc) {
        if (unit(r) < c->sparsity) continue;
        for (size_t i = r0; i < r0 + c->br && i < M; i++)
          for (size_t j = k0; j < k0 + c->bc && j < K; j++)
            if (unit(r) < 0.8) w[i * K + j] = rnd_weight(r, c->dyadic);
      }
  } else if (c->shared) { /* N:M shared by blocks of 8 rows: each row a subset of its block's picks */
    const size_t S = c->stride, mm = c->nm_m;
    const size_t groups = S == 1 ? (K + mm - 1) / mm : K / mm;
    for (size_t r0 = 0; r0 < M; r0 += SPARROW_NM_SHARED_ROWS)
      for (size_t g = 0; g < groups; g++) {
        size_t cols[32], nc = 0, picked[32], np = 0;
        for (size_t q = 0; q < mm; q++) {
          const size_t col = S == 1 ? g * mm + q : ((g / S) * mm + q) * S + g % S;
          if (col < K) cols[nc++] = col;
        }
        const size_t want = c->sparsity >= 1.0 ? 0 : unit(r) < 0.75 ? c->nm_n : rnd(r, 0, c->nm_n);
        for (size_t t = 0; t < want && nc > 0; t++) {
          const size_t pick = rnd(r, 0, nc - 1);
          picked[np++] = cols[pick];
          cols[pick] = cols[--nc];
        }
        for (size_t row = r0; row < M && row < r0 + SPARROW_NM_SHARED_ROWS; row++)
          for (size_t t = 0; t < np; t++)
            if (unit(r) < 0.85) w[row * K + picked[t]] = rnd_weight(r, c->dyadic);
      }
  } else { /* N:M: at most n nonzeros per group, sometimes fewer (padding pairs) */
    const size_t S = c->stride, mm = c->nm_m;
    const size_t groups = S == 1 ? (K + mm - 1) / mm : K / mm;
    for (size_t row = 0; row < M; row++)
      for (size_t g = 0; g < groups; g++) {
        size_t cols[32], nc = 0;
        for (size_t q = 0; q < mm; q++) {
          const size_t col = S == 1 ? g * mm + q : ((g / S) * mm + q) * S + g % S;
          if (col < K) cols[nc++] = col;
        }
        size_t want = unit(r) < 0.75 ? c->nm_n : rnd(r, 0, c->nm_n);
        if (c->sparsity >= 1.0) want = 0;
        for (size_t t = 0; t < want && nc > 0; t++) {
          const size_t pick = rnd(r, 0, nc - 1);
          w[row * K + cols[pick]] = rnd_weight(r, c->dyadic);
          cols[pick] = cols[--nc];
        }
      }
  }
}

/* Builds the matrix through the importer of its format from the dense W (CSR: columns shuffled
 * per row; BSR: garbage in the edge-block padding, which the importer must zero). */
static sparrow_status import_matrix(const test_case* c, rng* r, const float* w, sparrow_matrix** out) {
  const size_t M = c->m, K = c->k;
  sparrow_status st = SPARROW_ERR_INVALID_ARGUMENT;
  if (c->fmt == SPARROW_FORMAT_CSR) {
    int64_t* rp = malloc((M + 1) * sizeof(int64_t));
    int64_t* col = malloc((M * K + 1) * sizeof(int64_t));
    float* val = malloc((M * K + 1) * sizeof(float));
    size_t nnz = 0;
    for (size_t i = 0; i < M; i++) {
      rp[i] = (int64_t)nnz;
      const size_t start = nnz;
      for (size_t j = 0; j < K; j++)
        if (w[i * K + j] != 0.0f) { col[nnz] = (int64_t)j; val[nnz++] = w[i * K + j]; }
      for (size_t t = nnz - start; t > 1; t--) { /* shuffle the row */
        const size_t s = rnd(r, 0, t - 1);
        const int64_t tc = col[start + s]; col[start + s] = col[start + t - 1]; col[start + t - 1] = tc;
        const float tv = val[start + s]; val[start + s] = val[start + t - 1]; val[start + t - 1] = tv;
      }
    }
    rp[M] = (int64_t)nnz;
    st = sparrow_import_csr(M, K, rp, col, val, nnz, out);
    free(rp); free(col); free(val);
  } else if (c->fmt == SPARROW_FORMAT_NM) {
    const sparrow_pack_params p = {.nm_n = c->nm_n, .nm_m = c->nm_m, .nm_group_stride = c->stride};
    const size_t S = c->stride, mm = c->nm_m, n = c->nm_n;
    const size_t groups = S == 1 ? (K + mm - 1) / mm : K / mm;
    float* val = calloc(M * groups * n, sizeof(float));
    uint8_t* idx = calloc(M * groups * n, 1);
    for (size_t i = 0; i < M; i++)
      for (size_t g = 0; g < groups; g++) {
        /* Nonzeros first, then padding at unused in-K positions, in increasing order. */
        uint32_t used = 0;
        size_t cnt = 0;
        for (size_t q = 0; q < mm; q++) {
          const size_t col = S == 1 ? g * mm + q : ((g / S) * mm + q) * S + g % S;
          if (col < K && w[i * K + col] != 0.0f) { used |= 1u << q; cnt++; }
        }
        for (size_t q = 0; q < mm && cnt < n; q++) {
          const size_t col = S == 1 ? g * mm + q : ((g / S) * mm + q) * S + g % S;
          if (col < K && !(used & (1u << q))) { used |= 1u << q; cnt++; }
        }
        if (cnt < n) { /* a tiny partial group: not enough in-K positions; not importable */
          free(val); free(idx);
          return SPARROW_ERR_PATTERN;
        }
        size_t t = 0;
        for (size_t q = 0; q < mm && t < n; q++) {
          if (!(used & (1u << q))) continue;
          const size_t col = S == 1 ? g * mm + q : ((g / S) * mm + q) * S + g % S;
          idx[(i * groups + g) * n + t] = (uint8_t)q;
          val[(i * groups + g) * n + t++] = w[i * K + col];
        }
      }
    st = sparrow_import_nm(M, K, &p, val, idx, out);
    free(val); free(idx);
  } else {
    const size_t R = c->br, C = c->bc, mb = (M + R - 1) / R, kb = (K + C - 1) / C;
    int64_t* rp = malloc((mb + 1) * sizeof(int64_t));
    int64_t* bcol = malloc((mb * kb + 1) * sizeof(int64_t));
    float* val = malloc((mb * kb * R * C + 1) * sizeof(float));
    size_t nb = 0;
    for (size_t bi = 0; bi < mb; bi++) {
      rp[bi] = (int64_t)nb;
      for (size_t bj = 0; bj < kb; bj++) {
        int nz = 0;
        for (size_t i = bi * R; i < bi * R + R && i < M; i++)
          for (size_t j = bj * C; j < bj * C + C && j < K; j++) nz |= w[i * K + j] != 0.0f;
        if (!nz) continue;
        bcol[nb] = (int64_t)bj;
        for (size_t i = 0; i < R; i++)
          for (size_t j = 0; j < C; j++) {
            const size_t gi = bi * R + i, gj = bj * C + j;
            val[nb * R * C + i * C + j] = gi < M && gj < K ? w[gi * K + gj] : 1000.0f; /* padding */
          }
        nb++;
      }
    }
    rp[mb] = (int64_t)nb;
    st = sparrow_import_bsr(M, K, R, C, rp, bcol, val, nb, out);
    free(rp); free(bcol); free(val);
  }
  return st;
}

/* ---- running ------------------------------------------------------------------------------------ */

typedef struct {
  sparrow_spmm_plan* plan;
  size_t next;
  pthread_mutex_t lock;
} tile_queue;

static void* tile_worker(void* arg) {
  tile_queue* q = arg;
  for (;;) {
    pthread_mutex_lock(&q->lock);
    const size_t t = q->next++;
    pthread_mutex_unlock(&q->lock);
    if (t >= q->plan->tiles) return NULL;
    sparrow_spmm_task((void*)q->plan, t);
  }
}

/* threads == 1: sparrow_spmm; otherwise prepare, tiles on `threads` pthreads, finish (what the
 * Swift layer does with DispatchQueue.concurrentPerform). */
static sparrow_status run_call(const sparrow_matrix* w, const sparrow_spmm_call* call, int threads) {
  if (threads <= 1) return sparrow_spmm(w, call, 1);
  const sparrow_status st = sparrow_spmm_check(w, call);
  if (st != SPARROW_OK) return st;
  sparrow_spmm_plan plan;
  sparrow_spmm_prepare(&plan, w, call, threads);
  tile_queue q = {.plan = &plan, .next = 0};
  pthread_mutex_init(&q.lock, NULL);
  pthread_t th[8];
  for (int i = 0; i < threads; i++) pthread_create(&th[i], NULL, tile_worker, &q);
  for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
  pthread_mutex_destroy(&q.lock);
  sparrow_spmm_finish(&plan);
  return SPARROW_OK;
}

static const float SENTINEL = -7777.25f;

/* X rows: either ordinary memory with NaN in the padding columns, in masked-out rows and in 32
 * rows past row K-1 (a kernel that reads them, even to multiply by a padding zero, turns the
 * result into NaN), or (guard) each row ending exactly at a page followed by a PROT_NONE page,
 * with PROT_NONE pages past the last row as well (a read past column n-1 or row K-1 faults). */
typedef struct {
  float* x;
  size_t stride;
  void* map;
  size_t map_bytes;
  float* heap;
} x_buffer;

#define X_TRAILING_ROWS 32

static int x_alloc(x_buffer* b, size_t K, size_t n, int guard, size_t pad) {
  memset(b, 0, sizeof *b);
  if (guard) {
    const size_t P = (size_t)sysconf(_SC_PAGESIZE);
    if (n * sizeof(float) > P) return -1;
    b->map_bytes = (2 * K + 2 * X_TRAILING_ROWS) * P;
    b->map = mmap(NULL, b->map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b->map == MAP_FAILED) {
      b->map = NULL;
      return -1;
    }
    for (size_t k = 0; k < K; k++)
      if (mprotect((char*)b->map + (2 * k + 1) * P, P, PROT_NONE) != 0) return -1;
    if (mprotect((char*)b->map + 2 * K * P, 2 * X_TRAILING_ROWS * P, PROT_NONE) != 0) return -1;
    b->stride = 2 * P;
    b->x = (float*)((char*)b->map + P - n * sizeof(float));
  } else {
    b->stride = (n + pad) * sizeof(float);
    const size_t count = (K + X_TRAILING_ROWS) * (n + pad);
    b->heap = malloc(count * sizeof(float));
    if (b->heap == NULL) return -1;
    for (size_t i = 0; i < count; i++) b->heap[i] = NAN;
    b->x = b->heap;
  }
  return 0;
}

static void x_free(x_buffer* b) {
  if (b->map != NULL) munmap(b->map, b->map_bytes);
  free(b->heap);
}

static float* xrow(const x_buffer* b, size_t k) { return (float*)((char*)b->x + k * b->stride); }

/* `mat`: the packed matrix (N:M kernels with block_rows need its pattern shared by blocks of
 * that many rows, which the packer detects; any N:M matrix of at most 8 rows is). */
static int kernel_fits(const sparrow_ukernel_desc* d, const test_case* c, const sparrow_matrix* mat) {
  if (d->format != c->fmt) return 0;
  if (c->fmt == SPARROW_FORMAT_NM && d->block_rows != 0 && d->block_rows != mat->u.nm.shared_rows) return 0;
  if (c->fmt == SPARROW_FORMAT_BSR) {
    if (d->block_rows != 0 && d->block_rows != c->br) return 0;
    if (d->block_cols != 0 && d->block_cols != c->bc) return 0;
  }
  return 1;
}

/* The kernel the dispatcher must pick: the first fitting entry of the active ISA, else of AVX2
 * under AVX-512 (the level below), else scalar. */
static const char* expected_auto_kernel(const test_case* c, const sparrow_matrix* mat) {
  const sparrow_isa isa = sparrow_active_isa();
  for (size_t i = 0; i < sparrow_ukernel_count(); i++) {
    const sparrow_ukernel_desc* d = sparrow_ukernel_get(i);
    if (d->isa == isa && kernel_fits(d, c, mat)) return d->name;
  }
  if (isa == SPARROW_ISA_AVX512)
    for (size_t i = 0; i < sparrow_ukernel_count(); i++) {
      const sparrow_ukernel_desc* d = sparrow_ukernel_get(i);
      if (d->isa == SPARROW_ISA_AVX2 && kernel_fits(d, c, mat)) return d->name;
    }
  for (size_t i = 0; i < sparrow_ukernel_count(); i++) {
    const sparrow_ukernel_desc* d = sparrow_ukernel_get(i);
    if (d->isa == SPARROW_ISA_SCALAR && kernel_fits(d, c, mat)) return d->name;
  }
  return "none";
}

static void run_case(const test_case* c, uint64_t case_seed) {
  describe(c);
  if (g_verbose) fprintf(stderr, "case %ld: %s\n", g_case_index, g_case);
  rng r = {case_seed};
  const size_t M = c->m, K = c->k, N = c->n;
  float* w = malloc(M * K * sizeof(float));
  make_weights(c, &r, w);

  sparrow_matrix* mat = NULL;
  sparrow_status st;
  if (c->import) {
    st = import_matrix(c, &r, w, &mat);
    if (st == SPARROW_ERR_PATTERN && c->fmt == SPARROW_FORMAT_NM) { /* not representable; skip */
      free(w);
      return;
    }
  } else {
    const sparrow_pack_params p = {.nm_n = c->nm_n, .nm_m = c->nm_m, .nm_group_stride = c->stride,
                                   .block_rows = c->br, .block_cols = c->bc};
    st = sparrow_pack(w, M, K, c->fmt, &p, &mat);
  }
  if (st != SPARROW_OK) {
    fail("packing/import returned %d (%s)", (int)st, sparrow_last_error());
    free(w);
    return;
  }
  /* The packed form must unpack to W exactly. */
  float* back = malloc(M * K * sizeof(float));
  sparrow_matrix_to_dense(mat, back);
  if (memcmp(back, w, M * K * sizeof(float)) != 0) fail("sparrow_matrix_to_dense differs from W");
  free(back);
  /* A pattern made shared must be packed as shared. */
  if (c->fmt == SPARROW_FORMAT_NM && c->shared && mat->u.nm.shared_rows != SPARROW_NM_SHARED_ROWS)
    fail("N:M pattern shared by blocks of %d rows was not packed as shared", SPARROW_NM_SHARED_ROWS);

  /* Activation lists. */
  const size_t kpc = c->in_channels ? c->kpc : 1;
  const size_t channels = K / kpc;
  uint32_t* in_list = malloc((channels + 1) * sizeof(uint32_t));
  size_t n_in = 0;
  uint8_t* active_k = malloc(K);
  memset(active_k, 1, K);
  if (c->in_channels) {
    const double keep = c->in_kind == 1 ? 0.0 : c->in_kind == 2 ? 2.0 : unit(&r);
    const size_t only = rnd(&r, 0, channels - 1);
    memset(active_k, 0, K);
    for (size_t ch = 0; ch < channels; ch++)
      if (c->in_kind == 3 ? ch == only : unit(&r) < keep) {
        in_list[n_in++] = (uint32_t)ch;
        memset(active_k + ch * kpc, 1, kpc);
      }
  }
  uint32_t* out_list = malloc((M + 1) * sizeof(uint32_t));
  size_t n_out = 0;
  uint8_t* active_row = malloc(M);
  memset(active_row, 1, M);
  if (c->out_rows) {
    const double keep = unit(&r);
    memset(active_row, 0, M);
    for (size_t i = 0; i < M; i++)
      if (unit(&r) < keep) { out_list[n_out++] = (uint32_t)i; active_row[i] = 1; }
  }

  /* X, bias, reference. */
  x_buffer xb;
  if (x_alloc(&xb, K, N, c->guard, rnd(&r, 0, 5)) != 0) {
    fail("cannot allocate X");
    goto done_lists;
  }
  for (size_t k = 0; k < K; k++)
    for (size_t j = 0; j < N; j++) xrow(&xb, k)[j] = active_k[k] ? rnd_act(&r, c->dyadic) : NAN;
  float* bias = NULL;
  if (c->bias) {
    bias = malloc(M * sizeof(float));
    for (size_t i = 0; i < M; i++) bias[i] = c->dyadic ? (float)((int)rnd(&r, 0, 32) - 16) / 8.0f : rnd_act(&r, 0);
  }
  float lo = -INFINITY, hi = INFINITY;
  if (c->clamp == 1) lo = 0.0f;
  if (c->clamp == 2) lo = 0.0f, hi = 6.0f;
  if (c->clamp == 3) lo = -0.5f, hi = 0.5f;
  float* ref = malloc(M * N * sizeof(float));
  for (size_t i = 0; i < M; i++)
    for (size_t j = 0; j < N; j++) {
      if (!active_row[i]) { ref[i * N + j] = 0.0f; continue; }
      double s = bias != NULL ? bias[i] : 0.0;
      for (size_t k = 0; k < K; k++)
        if (active_k[k] && w[i * K + k] != 0.0f) s += (double)w[i * K + k] * (double)xrow(&xb, k)[j];
      float v = (float)s;
      v = v < lo ? lo : v;
      v = v > hi ? hi : v;
      ref[i * N + j] = v;
    }

  const size_t ypad = rnd(&r, 0, 3);
  const size_t ystride = N + ypad;
  float* y = malloc(M * ystride * sizeof(float));
  sparrow_spmm_call call = {
      .x = xb.x, .x_stride = xb.stride, .y = y, .y_stride = ystride * sizeof(float), .n = N,
      .bias = bias, .clamp_lo = lo, .clamp_hi = hi,
      .out_rows = c->out_rows ? out_list : NULL, .n_out_rows = n_out,
      .in_channels = c->in_channels ? in_list : NULL, .n_in_channels = n_in,
      .k_per_channel = c->kpc};
  const size_t ws_bytes = sparrow_spmm_workspace_bytes(mat, N, c->out_rows, c->in_channels);
  void* ws = NULL;
  if (ws_bytes > 0) {
    ws = aligned_alloc(64, (ws_bytes + 63) & ~(size_t)63);
    call.workspace = ws;
    call.workspace_bytes = ws_bytes;
  }

  /* Every fitting runnable kernel, forced; then the automatic choice (index SIZE_MAX). */
  const size_t nk = sparrow_ukernel_count();
  for (size_t ki = 0; ki <= nk; ki++) {
    const size_t force = ki < nk ? ki : SIZE_MAX;
    const char* kname;
    if (ki < nk) {
      const sparrow_ukernel_desc* d = sparrow_ukernel_get(ki);
      if (!kernel_fits(d, c, mat) || !sparrow_ukernel_runnable(ki)) continue;
      /* SPARROW_ISA=scalar runs cover the scalar path; the SIMD kernels ran in the other run. */
      if (g_scalar_only && d->isa != SPARROW_ISA_SCALAR) continue;
      kname = d->name;
    } else {
      kname = "auto";
    }
    st = sparrow_matrix_force_kernel(mat, force);
    if (st != SPARROW_OK) {
      fail("kernel %s: force_kernel returned %d (%s)", kname, (int)st, sparrow_last_error());
      continue;
    }
    if (ki == nk) {
      const char* got = sparrow_kernel_name(mat), *want = expected_auto_kernel(c, mat);
      if (strcmp(got, want) != 0) {
        fail("automatic choice is %s, expected %s", got, want);
        continue;
      }
      /* Every format has a NEON kernel (the generic BSR one takes any block shape). */
      if (sparrow_active_isa() == SPARROW_ISA_NEON && strstr(got, "__neon") == NULL) {
        fail("automatic choice under NEON is %s", got);
        continue;
      }
      if (sparrow_active_isa() == SPARROW_ISA_SCALAR && strstr(got, "__scalar") == NULL) {
        fail("automatic choice under SPARROW_ISA=scalar is %s", got);
        continue;
      }
      kname = got;
    }
    for (size_t i = 0; i < M * ystride; i++) y[i] = SENTINEL;
    g_kernel = kname;
    st = run_call(mat, &call, c->threads);
    g_kernel = "";
    if (st != SPARROW_OK) {
      fail("kernel %s: sparrow_spmm returned %d (%s)", kname, (int)st, sparrow_last_error());
      continue;
    }
    int bad = 0;
    for (size_t i = 0; i < M && !bad; i++) {
      for (size_t j = 0; j < N && !bad; j++) {
        const float got = y[i * ystride + j], want = ref[i * N + j];
        const float tol = 1e-5f + 1e-4f * fabsf(want);
        if (!(fabsf(got - want) <= tol) && !(isinf(want) && got == want)) {
          fail("kernel %s: y[%zu][%zu] = %.9g, reference %.9g", kname, i, j, got, want);
          bad = 1;
        }
      }
      for (size_t j = N; j < ystride && !bad; j++)
        if (y[i * ystride + j] != SENTINEL) {
          fail("kernel %s: wrote Y padding at row %zu column %zu", kname, i, j);
          bad = 1;
        }
    }
    if (!bad) {
      g_passed++;
      g_kernel_passed[ki < nk ? ki : MAX_KERNELS]++;
    }
  }

  free(ws);
  free(y);
  free(ref);
  free(bias);
  x_free(&xb);
done_lists:
  free(in_list);
  free(active_k);
  free(out_list);
  free(active_row);
  sparrow_matrix_free(mat);
  free(w);
}

/* ---- case generation ---------------------------------------------------------------------------- */

static const double SPARSITIES[] = {0.0, 0.5, 0.9, 1.0};
static const uint32_t NM_PATTERNS[][2] = {{2, 4}, {1, 4}, {2, 8}};
static const uint32_t BLOCKS[][2] = {{4, 1}, {1, 4}, {4, 4}, {3, 2}, {8, 1}, {2, 3}, {16, 1}};
static const size_t EDGE_N[] = {1, 3, 4, 16, 17, 32, 33};

/* Picks k_per_channel dividing K (in_channels lists need K = channels * kpc). */
static size_t pick_kpc(rng* r, size_t K, size_t preferred) {
  if (preferred > 1 && K % preferred == 0 && unit(r) < 0.7) return preferred;
  size_t div[16], nd = 0;
  for (size_t d = 1; d <= 9 && d <= K; d++)
    if (K % d == 0) div[nd++] = d;
  return div[rnd(r, 0, nd - 1)];
}

static void random_case(rng* r, test_case* c) {
  memset(c, 0, sizeof *c);
  const size_t f = rnd(r, 0, 3);
  c->fmt = f == 0 ? SPARROW_FORMAT_CSR : f == 1 ? SPARROW_FORMAT_NM : f == 2 ? SPARROW_FORMAT_BSR : SPARROW_FORMAT_GEMM;
  c->m = unit(r) < 0.15 ? 1 : rnd(r, 1, 64);
  c->k = unit(r) < 0.1 ? 1 : rnd(r, 1, 64);
  c->n = unit(r) < 0.5 ? EDGE_N[rnd(r, 0, sizeof EDGE_N / sizeof EDGE_N[0] - 1)] : rnd(r, 1, 70);
  c->sparsity = SPARSITIES[rnd(r, 0, 3)];
  size_t kpc_pref = 1;
  if (c->fmt == SPARROW_FORMAT_NM) {
    const size_t p = rnd(r, 0, 2);
    c->nm_n = NM_PATTERNS[p][0];
    c->nm_m = NM_PATTERNS[p][1];
    c->stride = unit(r) < 0.5 ? 1 : 9;
    if (c->stride == 9) { /* K = channels * 9, channels a multiple of m */
      c->k = 9 * c->nm_m * rnd(r, 1, c->nm_m == 8 ? 2 : 4);
      kpc_pref = 9;
    }
    if (c->sparsity == 0.5 || c->sparsity == 0.9) c->sparsity = 0.0; /* only 1.0 (empty) applies */
    c->shared = unit(r) < 0.4;
    if (c->shared && unit(r) < 0.5) c->m = rnd(r, 9, 70); /* several blocks, a partial last one */
  } else if (c->fmt == SPARROW_FORMAT_BSR) {
    const size_t b = rnd(r, 0, sizeof BLOCKS / sizeof BLOCKS[0] - 1);
    c->br = BLOCKS[b][0];
    c->bc = BLOCKS[b][1];
  }
  c->bias = (int)rnd(r, 0, 1);
  c->clamp = (int)rnd(r, 0, 3);
  c->out_rows = unit(r) < 0.3;
  c->in_channels = unit(r) < 0.3;
  c->kpc = c->in_channels ? pick_kpc(r, c->k, kpc_pref) : 0;
  c->in_kind = unit(r) < 0.7 ? 0 : (int)rnd(r, 1, 3);
  c->threads = (int)rnd(r, 1, 4);
  c->guard = unit(r) < 0.25;
  c->dyadic = c->k > 64 || unit(r) < 0.7;
  c->import = c->fmt != SPARROW_FORMAT_GEMM && unit(r) < 0.15; /* GEMM has no importer */
}

/* ---- fixed edge cases ------------------------------------------------------------------------------ */

static size_t add_fixed_cases(test_case* out) {
  size_t n = 0;
  static const size_t shapes[][3] = {{1, 1, 1},  {1, 1, 17}, {5, 1, 3},  {1, 7, 33}, {7, 13, 16},
                                     {9, 5, 1},  {3, 64, 4}, {64, 64, 64}, {13, 31, 35}, {2, 9, 15}};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    for (size_t sp = 0; sp < 4; sp++) {
      test_case c = {.fmt = SPARROW_FORMAT_CSR, .m = shapes[s][0], .k = shapes[s][1], .n = shapes[s][2],
                     .sparsity = SPARSITIES[sp], .bias = (int)(s & 1), .clamp = (int)(sp & 3), .threads = 1,
                     .dyadic = 1};
      out[n++] = c;
      for (size_t b = 0; b < sizeof BLOCKS / sizeof BLOCKS[0]; b++) {
        c.fmt = SPARROW_FORMAT_BSR;
        c.br = BLOCKS[b][0];
        c.bc = BLOCKS[b][1];
        c.guard = (int)(b & 1);
        out[n++] = c;
      }
      /* Packed dense (GEMM): every panel height and column block edge of these shapes. */
      c.fmt = SPARROW_FORMAT_GEMM, c.br = c.bc = 0, c.guard = (int)(sp & 1), c.out_rows = (int)(s & 1);
      c.in_channels = (int)(sp >= 2), c.kpc = 1, c.threads = 1 + (int)(sp & 1);
      out[n++] = c;
    }
    for (size_t p = 0; p < 3; p++)
      for (int s9 = 0; s9 < 2; s9++) {
        test_case c = {.fmt = SPARROW_FORMAT_NM, .m = shapes[s][0], .k = shapes[s][1], .n = shapes[s][2],
                       .nm_n = NM_PATTERNS[p][0], .nm_m = NM_PATTERNS[p][1], .stride = s9 ? 9 : 1,
                       .bias = 1, .clamp = 2, .threads = 2, .guard = 1, .dyadic = 1};
        if (s9) c.k = 9 * c.nm_m * (1 + s % 2), c.in_channels = 1, c.kpc = 9;
        out[n++] = c;
        /* The same shape with the pattern shared by blocks of 8 rows (and more rows). */
        c.shared = 1, c.m = c.m * 3 + 1, c.out_rows = (int)(s & 1);
        out[n++] = c;
      }
  }
  /* Activation lists on every format, several threads. */
  for (int t = 1; t <= 4; t++) {
    test_case c = {.fmt = SPARROW_FORMAT_BSR, .m = 10, .k = 12, .n = 33, .sparsity = 0.5, .br = 4, .bc = 1,
                   .bias = 1, .out_rows = 1, .in_channels = 1, .kpc = 3, .threads = t, .dyadic = 1};
    out[n++] = c;
    c.br = 1, c.bc = 4;
    out[n++] = c;
    c.br = 4, c.bc = 4;
    out[n++] = c;
    c.fmt = SPARROW_FORMAT_CSR;
    out[n++] = c;
    c.fmt = SPARROW_FORMAT_NM, c.nm_n = 2, c.nm_m = 4, c.stride = 9, c.k = 72, c.kpc = 9;
    out[n++] = c;
    c.fmt = SPARROW_FORMAT_GEMM, c.sparsity = 0.0;
    out[n++] = c;
  }
  /* Input-channel lists of every kind (empty, all, one, random) with k_per_channel 1 and 9 on every
   * format: the compacted copies the driver builds (CSR, N:M as CSR, BSR blocks). */
  for (int kind = 0; kind < 4; kind++)
    for (int k9 = 0; k9 < 2; k9++) {
      test_case c = {.fmt = SPARROW_FORMAT_CSR, .m = 13, .k = 72, .n = 37, .sparsity = 0.5, .bias = 1, .clamp = 0,
                     .out_rows = kind & 1, .in_channels = 1, .kpc = k9 ? 9 : 1, .in_kind = kind,
                     .threads = 1 + (kind & 1), .guard = 1, .dyadic = 1};
      out[n++] = c;
      c.fmt = SPARROW_FORMAT_NM, c.nm_n = 2, c.nm_m = 4, c.stride = 1, c.sparsity = 0.0;
      out[n++] = c;
      c.stride = 9;
      out[n++] = c;
      c.nm_n = 1, c.nm_m = 8, c.stride = 1;
      out[n++] = c;
      c.fmt = SPARROW_FORMAT_GEMM, c.sparsity = 0.0;
      out[n++] = c;
      c.fmt = SPARROW_FORMAT_BSR, c.sparsity = 0.5;
      for (size_t b = 0; b < sizeof BLOCKS / sizeof BLOCKS[0]; b++) {
        c.br = BLOCKS[b][0], c.bc = BLOCKS[b][1];
        out[n++] = c;
      }
    }
  /* GEMM with K over one 256-row slice of the AVX2 kernel's packed X (partial sums through Y),
   * with and without lists. */
  for (int v = 0; v < 4; v++) {
    test_case c = {.fmt = SPARROW_FORMAT_GEMM, .m = 13 + (size_t)v, .k = 600 + (size_t)v * 3, .n = 33 + (size_t)v * 15,
                   .sparsity = 0.5, .bias = 1, .clamp = v, .out_rows = v & 1, .in_channels = v >= 2, .kpc = 3,
                   .threads = 1 + (v & 1), .guard = v & 1, .dyadic = 1};
    out[n++] = c;
  }
  /* K > 65536: CSR with 32-bit column indices. */
  {
    test_case c = {.fmt = SPARROW_FORMAT_CSR, .m = 3, .k = 70001, .n = 17, .sparsity = 0.999, .bias = 1,
                   .threads = 1, .dyadic = 1};
    out[n++] = c;
    c.n = 33, c.in_channels = 1, c.kpc = 1, c.threads = 3;
    out[n++] = c;
  }
  return n;
}

/* ---- main --------------------------------------------------------------------------------------- */

int main(int argc, char** argv) {
  long cases = 1500;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) g_seed = strtoull(argv[++i], NULL, 0);
    else if (strcmp(argv[i], "--cases") == 0 && i + 1 < argc) cases = strtol(argv[++i], NULL, 0);
    else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) g_only = strtol(argv[++i], NULL, 0);
    else if (strcmp(argv[i], "--verbose") == 0) g_verbose = 1;
    else {
      fprintf(stderr, "usage: %s [--seed S] [--cases N] [--only I] [--verbose]\n", argv[0]);
      return 2;
    }
  }
  const size_t nk = sparrow_ukernel_count();
  if (nk > MAX_KERNELS) {
    fprintf(stderr, "too many kernels (%zu)\n", nk);
    return 2;
  }
  printf("isa: detected %s, active %s; %zu kernels registered; seed %llu\n",
         sparrow_isa_name(sparrow_detected_isa()), sparrow_isa_name(sparrow_active_isa()), nk,
         (unsigned long long)g_seed);

  g_scalar_only = sparrow_active_isa() == SPARROW_ISA_SCALAR && sparrow_detected_isa() != SPARROW_ISA_SCALAR;
  if (g_scalar_only) printf("SPARROW_ISA=scalar: scalar kernels and the automatic (scalar) choice only\n");
  signal(SIGSEGV, on_fault);
  signal(SIGBUS, on_fault);
  if (g_only < 0) test_rejections();

  static test_case fixed[1024];
  const size_t n_fixed = add_fixed_cases(fixed);
  const long total = (long)n_fixed + cases;
  for (long i = 0; i < total; i++) {
    if (g_only >= 0 && i != g_only) continue;
    g_case_index = i;
    const uint64_t case_seed = g_seed ^ (0xD1B54A32D192ED03ull * (uint64_t)(i + 1));
    test_case c;
    if (i < (long)n_fixed) {
      c = fixed[i];
    } else {
      rng r = {case_seed ^ 0xA5A5A5A5ull};
      random_case(&r, &c);
    }
    run_case(&c, case_seed);
  }

  for (size_t i = 0; i < nk; i++) {
    const sparrow_ukernel_desc* d = sparrow_ukernel_get(i);
    if (d->format == SPARROW_FORMAT_DENSE || d->format == SPARROW_FORMAT_CHANNEL)
      printf("  %-34s OpenBLAS (%s): checked by the Swift suite\n", d->name,
             d->format == SPARROW_FORMAT_DENSE ? "dense" : "channel");
    else if (g_scalar_only && d->isa != SPARROW_ISA_SCALAR)
      printf("  %-34s skipped (SPARROW_ISA=scalar)\n", d->name);
    else if (sparrow_ukernel_runnable(i))
      printf("  %-34s %6zu checks passed\n", d->name, g_kernel_passed[i]);
    else
      printf("  %-34s not runnable on this CPU\n", d->name);
  }
  printf("  %-34s %6zu checks passed\n", "(automatic choice)", g_kernel_passed[MAX_KERNELS]);
  if (g_only < 0) test_dwconv(g_seed, 300, g_scalar_only);
  if (g_only < 0) test_dwcv(g_seed, 300, g_scalar_only);
  if (g_only < 0) test_dconv(g_seed, 200, g_scalar_only);
  if (g_only < 0) test_rowwise(g_seed, 600, g_scalar_only);
  if (g_only < 0) test_transpose(g_seed, 300);
  if (g_only < 0) test_maxpool(g_seed, 400);
  if (g_only < 0) test_pool(g_seed, 400);
  if (g_only < 0) test_window(g_seed, 300, g_scalar_only);
  if (g_only < 0) test_qgemm(g_seed, 400, g_scalar_only);
  if (g_only < 0) test_qconv(g_seed, 300, g_scalar_only);
  if (g_only < 0) test_qelem(g_seed, 400, g_scalar_only);
  if (g_only < 0) test_gate(g_seed, 300, g_scalar_only);
  printf("%zu passed, %zu failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
