/* Packed dense (GEMM) kernels reading X as an image window (sparrow_spmm_call.x_window: a k x k
 * convolution without the unfolded copy) against a plain double-precision loop over the
 * convolution's definition, on random shapes (strides, dilations, pads, "same" shapes, which take
 * the shifted-copy path, and outputs that end in partial column blocks), with and without an
 * active-input-channel list, on 1 and 3 threads. Inputs are dyadic, so sums are exact in float. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "neon_test.h"
#include "sparrow_kernels.h"

static uint64_t win_state;
static size_t win_rnd(size_t lo, size_t hi) {
  uint64_t z = (win_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return lo + (size_t)((z ^ (z >> 31)) % (hi - lo + 1));
}
static float win_dyadic(void) { return (float)((long)win_rnd(0, 64) - 32) / 16.0f; }

static size_t out_size(size_t in, size_t p0, size_t p1, size_t k, size_t d, size_t st) {
  const size_t ext = (k - 1) * d + 1;
  return in + p0 + p1 < ext ? 0 : (in + p0 + p1 - ext) / st + 1;
}

/* y[m][oy][ox] = clamp(bias[m] + sum over active channels c and taps of w[m][c][ky][kx] * x). */
static void reference(const sparrow_dwconv_shape* s, size_t M, const float* x, const float* w, const float* bias,
                      const uint8_t* active, float lo, float hi, float* y) {
  for (size_t m = 0; m < M; m++)
    for (size_t oy = 0; oy < s->ho; oy++)
      for (size_t ox = 0; ox < s->wo; ox++) {
        double acc = bias[m];
        for (size_t c = 0; c < s->channels; c++) {
          if (!active[c]) continue;
          for (size_t ky = 0; ky < s->kh; ky++)
            for (size_t kx = 0; kx < s->kw; kx++) {
              const long iy = (long)(oy * s->stride_h + ky * s->dilation_h) - (long)s->pad_top;
              const long ix = (long)(ox * s->stride_w + kx * s->dilation_w) - (long)s->pad_left;
              if (iy >= 0 && iy < (long)s->h && ix >= 0 && ix < (long)s->w)
                acc += (double)w[((m * s->channels + c) * s->kh + ky) * s->kw + kx] *
                       x[(c * s->h + (size_t)iy) * s->w + (size_t)ix];
            }
        }
        const float v = (float)acc;
        y[(m * s->ho + oy) * s->wo + ox] = v < lo ? lo : (v > hi ? hi : v);
      }
}

typedef struct {
  sparrow_spmm_plan* plan;
  size_t next;
  pthread_mutex_t lock;
} win_queue;

static void* win_worker(void* arg) {
  win_queue* q = arg;
  for (;;) {
    pthread_mutex_lock(&q->lock);
    const size_t t = q->next++;
    pthread_mutex_unlock(&q->lock);
    if (t >= q->plan->tiles) return NULL;
    sparrow_spmm_task(q->plan, t);
  }
}

static sparrow_status run_threads(const sparrow_matrix* w, const sparrow_spmm_call* call, int threads) {
  if (threads <= 1) return sparrow_spmm(w, call, 1);
  const sparrow_status st = sparrow_spmm_check(w, call);
  if (st != SPARROW_OK) return st;
  sparrow_spmm_plan plan;
  sparrow_spmm_prepare(&plan, w, call, threads);
  win_queue q = {.plan = &plan, .next = 0};
  pthread_mutex_init(&q.lock, NULL);
  pthread_t th[4];
  for (int i = 0; i < threads; i++) pthread_create(&th[i], NULL, win_worker, &q);
  for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
  pthread_mutex_destroy(&q.lock);
  sparrow_spmm_finish(&plan);
  return SPARROW_OK;
}

static void random_shape(sparrow_dwconv_shape* s, int same) {
  memset(s, 0, sizeof *s);
  s->multiplier = 1;
  s->channels = win_rnd(1, 6);
  s->kh = win_rnd(1, 4), s->kw = win_rnd(1, 4);
  s->dilation_h = win_rnd(1, 2), s->dilation_w = win_rnd(1, 2);
  s->h = win_rnd(1, 12), s->w = win_rnd(1, 60);
  if (same) { /* stride 1, output as large as the input */
    s->stride_h = s->stride_w = 1;
    s->pad_top = win_rnd(0, (s->kh - 1) * s->dilation_h);
    s->pad_left = win_rnd(0, (s->kw - 1) * s->dilation_w);
    s->ho = s->h, s->wo = s->w;
    return;
  }
  s->stride_h = win_rnd(1, 3), s->stride_w = win_rnd(1, 3);
  s->pad_top = win_rnd(0, 2), s->pad_left = win_rnd(0, 3);
  s->ho = out_size(s->h, s->pad_top, win_rnd(0, 2), s->kh, s->dilation_h, s->stride_h);
  s->wo = out_size(s->w, s->pad_left, win_rnd(0, 3), s->kw, s->dilation_w, s->stride_w);
}

void test_window(uint64_t seed, long cases, int scalar_only) {
  win_state = seed ^ 0x3A11D0ull;
  const size_t nk = sparrow_ukernel_count();
  size_t tested = 0;
  for (long i = 0; i < cases; i++) {
    sparrow_dwconv_shape s;
    random_shape(&s, i % 3 == 0);
    if (s.ho == 0 || s.wo == 0) continue;
    const size_t M = win_rnd(1, 20), C = s.channels, K = C * s.kh * s.kw, n = s.ho * s.wo;
    const int lists = (int)win_rnd(0, 1), threads = win_rnd(0, 2) == 0 ? 3 : 1;
    const size_t ys = n + win_rnd(0, 5); /* a wider Y row than n: the stride is honoured */
    snprintf(g_case, sizeof g_case,
             "window case %ld: m%zu c%zu %zux%zu k%zux%zu s%zu,%zu d%zu,%zu p%zu,%zu -> %zux%zu lists %d threads %d", i,
             M, C, s.h, s.w, s.kh, s.kw, s.stride_h, s.stride_w, s.dilation_h, s.dilation_w, s.pad_top, s.pad_left,
             s.ho, s.wo, lists, threads);
    if (sparrow_dwconv_check(&s) != SPARROW_OK) {
      fail("valid shape refused: %s", sparrow_last_error());
      continue;
    }
    float* x = malloc(C * s.h * s.w * sizeof(float));
    float* w = malloc(M * K * sizeof(float));
    float* bias = malloc(M * sizeof(float));
    float* ref = malloc(M * n * sizeof(float));
    float* y = malloc(M * ys * sizeof(float));
    uint8_t* active = malloc(C);
    uint32_t* chans = malloc(C * sizeof(uint32_t));
    for (size_t j = 0; j < C * s.h * s.w; j++) x[j] = win_dyadic();
    for (size_t j = 0; j < M * K; j++) w[j] = win_rnd(0, 3) == 0 ? 0.0f : win_dyadic();
    for (size_t j = 0; j < M; j++) bias[j] = win_dyadic();
    size_t nch = 0;
    for (size_t c = 0; c < C; c++) {
      active[c] = !lists || win_rnd(0, 1);
      if (active[c]) chans[nch++] = (uint32_t)c;
    }
    const float lo = win_rnd(0, 1) ? 0.0f : -INFINITY, hi = INFINITY;
    reference(&s, M, x, w, bias, active, lo, hi, ref);
    sparrow_matrix* mat = NULL;
    if (sparrow_pack(w, M, K, SPARROW_FORMAT_GEMM, NULL, &mat) != SPARROW_OK) {
      fail("%s: pack failed: %s", g_case, sparrow_last_error());
    } else {
      for (size_t ki = 0; ki < nk; ki++) {
        const sparrow_ukernel_desc* d = sparrow_ukernel_get(ki);
        if (d->format != SPARROW_FORMAT_GEMM || !sparrow_ukernel_runnable(ki)) continue;
        if (scalar_only && d->isa != SPARROW_ISA_SCALAR) continue;
        if (sparrow_matrix_force_kernel(mat, ki) != SPARROW_OK) {
          fail("%s: %s: force failed: %s", g_case, d->name, sparrow_last_error());
          continue;
        }
        if (!sparrow_spmm_reads_window(mat)) {
          fail("%s: %s does not read windows", g_case, d->name);
          continue;
        }
        const size_t wsb = sparrow_spmm_workspace_bytes(mat, n, 0, lists);
        void* ws = wsb ? aligned_alloc(64, (wsb + 63) / 64 * 64) : NULL;
        for (size_t j = 0; j < M * ys; j++) y[j] = -7777.25f;
        const sparrow_spmm_call call = {.x = x,
                                        .x_stride = 0,
                                        .y = y,
                                        .y_stride = ys * sizeof(float),
                                        .n = n,
                                        .bias = bias,
                                        .clamp_lo = lo,
                                        .clamp_hi = hi,
                                        .in_channels = lists ? chans : NULL,
                                        .n_in_channels = nch,
                                        .k_per_channel = s.kh * s.kw,
                                        .workspace = ws,
                                        .workspace_bytes = wsb,
                                        .x_window = &s};
        const sparrow_status st = run_threads(mat, &call, threads);
        if (st != SPARROW_OK) {
          fail("%s: %s: refused: %s", g_case, d->name, sparrow_last_error());
        } else {
          int bad = 0;
          for (size_t m = 0; m < M && !bad; m++) {
            for (size_t j = 0; j < n && !bad; j++) {
              const float got = y[m * ys + j], want = ref[m * n + j];
              if (!(fabsf(got - want) <= 1e-5f + 1e-4f * fabsf(want))) {
                fail("%s: %s: y[%zu][%zu] = %g, expected %g", g_case, d->name, m, j, got, want);
                bad = 1;
              }
            }
            for (size_t j = n; j < ys && !bad; j++)
              if (y[m * ys + j] != -7777.25f) {
                fail("%s: %s: wrote past column n in row %zu", g_case, d->name, m);
                bad = 1;
              }
          }
          if (!bad) g_passed++, tested++;
        }
        free(ws);
      }
      sparrow_matrix_free(mat);
    }
    free(x), free(w), free(bias), free(ref), free(y), free(active), free(chans);
  }
  g_case[0] = 0;
  printf("window (GEMM kernels reading images): %zu checks passed\n", tested);
  if (tested == 0) fail("no GEMM kernel was tested on windows");
}
