/*
 * Sparrow kernels: the public C contract the Swift layer imports.
 *
 * Operation:   Y[M x N] = clamp(W[M x K] . X[K x N] + bias[M], lo, hi)
 *
 *   W  the weight matrix, packed once into one of the formats below (sparrow_matrix).
 *   X  dense activations, row-major: row k starts at x + k * x_stride (bytes), N floats each.
 *   Y  dense output, row-major: row m starts at y + m * y_stride (bytes), N floats each.
 *
 * A convolution weight [Cout, Cin, kh, kw] is viewed as M = Cout rows and
 * K = Cin * kh * kw columns; an input channel c owns the K-slice
 * [c * k_per_channel, (c + 1) * k_per_channel) with k_per_channel = kh * kw.
 *
 * Active-channel lists (for the runtime-pruning gate):
 *   - out_rows: compute only these output rows; every other row of Y is written as exact 0.0f
 *     (not the bias): that is what a gated channel holds after the gate's multiply.
 *   - in_channels: compute as if every K-slice not listed were zero in X (never read).
 *
 * Errors: functions that can fail (packing, importing, validating a call) return a
 * sparrow_status; compute functions return void and cannot fail once the call validated.
 * Kernels never allocate and never start threads; callers pass a workspace sized by
 * sparrow_spmm_workspace_bytes.
 *
 * Dispatch: every kernel is declared once in a list (Kernels/spmm/ukernels.inc,
 * Kernels/conv/dwconv/ukernels.inc, Kernels/rowwise/ukernels.inc) that feeds the dispatcher (Kernels/dispatch), the
 * tests and the benchmarks. A matrix is bound to its kernel when it is packed or imported, a direct convolution when it
 * is created: no call looks a kernel up.
 *
 * Threads: every driver has one shape. prepare fills a plan; its tasks run exactly once each,
 * in any order, on any threads (task functions of type sparrow_task_fn); finish completes it.
 * sparrow_parallel_for runs tasks on Sparrow's pool (or OpenMP, SPARROW_THREADING=openmp in
 * builds with SPARROW_OPENMP=1) and is the library's only parallel loop; the single-call functions
 * (sparrow_spmm, sparrow_dwconv, sparrow_direct_conv_run) use it.
 */
#ifndef SPARROW_KERNELS_H
#define SPARROW_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- threads ------------------------------------------------------------------------------ */

/* One task of a driver's plan (`context` is the plan). */
typedef void (*sparrow_task_fn)(void* context, size_t task);
/* Runs task(context, t) for every t in [0, tasks) on up to `threads` threads: on Sparrow's own
 * pool (sparrow_pool_for), or on OpenMP in builds with it when the environment has
 * SPARROW_THREADING=openmp. */
void sparrow_parallel_for(size_t tasks, int threads, sparrow_task_fn task, void* context);
/* The same on Sparrow's thread pool (Kernels/parallel/pool.c, POSIX threads, any build): the
 * caller and up to threads - 1 persistent workers take tasks from a shared counter, and the
 * caller waits for the tasks taken, never for a worker that has not started (an OpenMP region's
 * end waits for every member: a worker whose CPU is busy elsewhere stalls each region). One job
 * at a time: a concurrent or nested call runs its tasks on the calling thread. */
void sparrow_pool_for(size_t tasks, int threads, sparrow_task_fn task, void* context);

/* ---- status ----------------------------------------------------------------------------- */

typedef enum sparrow_status {
  SPARROW_OK = 0,
  SPARROW_ERR_INVALID_ARGUMENT = 1, /* a size, pointer or parameter is out of range */
  SPARROW_ERR_MALFORMED = 2,        /* externally supplied packed data is inconsistent */
  SPARROW_ERR_PATTERN = 3,          /* the dense matrix does not fit the requested pattern */
  SPARROW_ERR_OUT_OF_MEMORY = 4,
  SPARROW_ERR_UNSUPPORTED = 5, /* e.g. OpenMP entry point in a build without OpenMP */
} sparrow_status;

/* A thread-local, human-readable detail for the last failing call on this thread ("" if none). */
const char* sparrow_last_error(void);

/* ---- CPU dispatch ------------------------------------------------------------------------ */

typedef enum sparrow_isa {
  SPARROW_ISA_SCALAR = 0,
  SPARROW_ISA_AVX2 = 1,   /* x86-64 with AVX2 + FMA and OS support for YMM state */
  SPARROW_ISA_NEON = 2,   /* aarch64 Advanced SIMD */
  SPARROW_ISA_AVX512 = 3, /* x86-64 with AVX-512F as well as AVX2 + FMA, OS support for ZMM state */
} sparrow_isa;

/* The ISA in force: the best the CPU supports, unless SPARROW_ISA=scalar|avx2|avx512|neon forces
 * one (a forced ISA the CPU lacks falls back to scalar). Probed once, on first use. AVX-512 is a
 * level above AVX2: under it, a kernel family without an AVX-512 kernel runs its AVX2 one. */
sparrow_isa sparrow_active_isa(void);
/* The best ISA the CPU supports, ignoring the override. */
sparrow_isa sparrow_detected_isa(void);
const char* sparrow_isa_name(sparrow_isa isa);
/* 1 when this CPU can run kernels of `isa` (scalar always; AVX2 on an AVX-512 CPU too). */
int sparrow_isa_supported(sparrow_isa isa);
/* Force an ISA for this process (tests and benchmarks); returns the ISA actually set
 * (scalar if the CPU lacks the one asked for). Not thread-safe against running kernels.
 * Matrices packed and direct convolutions created before keep the kernel they were bound to. */
sparrow_isa sparrow_set_isa(sparrow_isa isa);
/* Extensions beside the levels, for the int8 kernels: AVX-512 VNNI (with BW and VL) and Arm's
 * dot product (sdot). 1 when the CPU has it and its level is the one in force. */
typedef enum sparrow_cpu_feature_id {
  SPARROW_CPU_NONE = 0,
  SPARROW_CPU_VNNI = 1,
  SPARROW_CPU_DOTPROD = 2,
} sparrow_cpu_feature_id;
int sparrow_cpu_feature(sparrow_cpu_feature_id f);
/* The L1 data cache of a core in bytes, as the C library reports it (32 KiB where it does not):
 * kernels that size their X blocks to L1 read it. */
size_t sparrow_l1d_bytes(void);

/* ---- packed matrices --------------------------------------------------------------------- */

typedef enum sparrow_format {
  SPARROW_FORMAT_DENSE = 0,   /* OpenBLAS sgemm on the row-major matrix */
  SPARROW_FORMAT_CSR = 1,     /* unstructured: row pointers, u16/u32 column indices, values */
  SPARROW_FORMAT_NM = 2,      /* N nonzeros in every group of M columns (2:4, 1:4, 2:8, ...) */
  SPARROW_FORMAT_BSR = 3,     /* r x c dense blocks, block-row pointers, block-column indices */
  SPARROW_FORMAT_CHANNEL = 4, /* all-zero rows/columns removed: smaller dense matrix + maps */
  SPARROW_FORMAT_GEMM = 5,    /* "packed": Sparrow's own dense kernels on MR-row panels (dense/gemm) */
} sparrow_format;

typedef struct sparrow_pack_params {
  /* N:M: n nonzeros per group of m; group_stride 1 groups consecutive K columns (ONNX's
   * flattened (Cin, kh, kw) order); group_stride = kh*kw groups along Cin for each kernel
   * position (the weight viewed as [Cout, kh, kw, Cin], as NVIDIA's ASP prunes). */
  uint32_t nm_n, nm_m, nm_group_stride;
  /* BSR block shape (rows x columns). */
  uint32_t block_rows, block_cols;
} sparrow_pack_params;

typedef struct sparrow_matrix sparrow_matrix; /* opaque; layouts in Kernels/pack/formats.h */

/* Packs a dense row-major M x K matrix (ld = K) into the format asked for. Zeros are dropped;
 * for NM the matrix must conform (at most n nonzeros per group) or SPARROW_ERR_PATTERN. */
sparrow_status sparrow_pack(const float* w, size_t m, size_t k, sparrow_format format,
                            const sparrow_pack_params* params, sparrow_matrix** out);

/* Imports externally supplied CSR (e.g. ONNX sparse_initializer). Validated: row_ptr[0] == 0,
 * monotone, row_ptr[m] == nnz, every column < k; columns need not be sorted (they are sorted
 * and duplicates rejected). Arrays are copied. */
sparrow_status sparrow_import_csr(size_t m, size_t k, const int64_t* row_ptr, const int64_t* col_idx,
                                  const float* values, size_t nnz, sparrow_matrix** out);

/* Imports N:M data: values[m][groups][n] and in-group indices idx[m][groups][n], groups =
 * ceil(k / nm_m) (group_stride 1) or (k / group_stride / nm_m) * group_stride. Validated:
 * indices < nm_m, strictly increasing inside a group, and every nonzero inside K (zero
 * padding pairs of a partial last group may point past it). */
sparrow_status sparrow_import_nm(size_t m, size_t k, const sparrow_pack_params* params, const float* values,
                                 const uint8_t* idx, sparrow_matrix** out);

/* Imports BSR: block_row_ptr[ceil(m/r) + 1], block_col[nblocks] (in block units),
 * values[nblocks][r][c] row-major. Validated like CSR. */
sparrow_status sparrow_import_bsr(size_t m, size_t k, size_t block_rows, size_t block_cols,
                                  const int64_t* block_row_ptr, const int64_t* block_col, const float* values,
                                  size_t nblocks, sparrow_matrix** out);

void sparrow_matrix_free(sparrow_matrix* matrix);

typedef struct sparrow_matrix_info {
  sparrow_format format;
  size_t rows, cols;   /* M, K */
  size_t nnz;          /* stored values (including explicit padding zeros) */
  size_t packed_bytes; /* every byte the packed form holds */
  uint32_t index_bits; /* CSR column index width: 16 or 32; else 0 */
  sparrow_pack_params params;
  size_t kept_rows, kept_cols; /* CHANNEL: size of the compact dense matrix */
  uint32_t nm_shared_rows;     /* N:M: R when blocks of R rows share their pattern (the packer
                                * detects it; kernels listed with block_rows R need it), else 0 */
} sparrow_matrix_info;

void sparrow_matrix_get_info(const sparrow_matrix* matrix, sparrow_matrix_info* info);

/* Unpacks to dense row-major M x K (for tests and inspection). */
void sparrow_matrix_to_dense(const sparrow_matrix* matrix, float* out);

/* ---- sparse x dense multiply ------------------------------------------------------------ */

typedef struct sparrow_spmm_call {
  const float* x;  /* K x N */
  size_t x_stride; /* bytes between rows of X, >= n * 4 */
  float* y;        /* M x N */
  size_t y_stride; /* bytes between rows of Y, >= n * 4 */
  size_t n;
  const float* bias;        /* M floats, or NULL */
  float clamp_lo, clamp_hi; /* -INFINITY/INFINITY for none, 0/INFINITY for ReLU, 0/6 ReLU6 */
  const uint32_t* out_rows; /* strictly increasing row indices, or NULL for all rows */
  size_t n_out_rows;
  const uint32_t* in_channels; /* strictly increasing channel indices, or NULL for all */
  size_t n_in_channels;
  size_t k_per_channel; /* K-slice per input channel (kh*kw); 0 means 1 */
  void* workspace;      /* sparrow_spmm_workspace_bytes bytes, 64-byte aligned */
  size_t workspace_bytes;
  /* Non-NULL: X is the im2col of one NCHW image under this window (rows (c, ky, kx), columns
   * (oy, ox), zeros in the padding), read on the fly: `x` points at the image (channels x h x w),
   * x_stride is ignored, n must be ho * wo and K channels * kh * kw. Only for matrices whose
   * kernel reads windows (sparrow_spmm_reads_window); others need X unfolded (sparrow_im2col). */
  const struct sparrow_dwconv_shape* x_window;
} sparrow_spmm_call;

/* Bytes of workspace a call needs (0 is possible). Depends on the matrix, n and whether
 * active-channel lists are given. With input channels, CSR/N:M/BSR need room for a compacted
 * copy of the matrix (at most its packed size): the call then costs in proportion to the
 * active nonzeros, plus one O(nnz) pass to copy them. */
size_t sparrow_spmm_workspace_bytes(const sparrow_matrix* w, size_t n, int has_out_rows, int has_in_channels);

/* Validates a call (sizes, strides, lists in range and increasing, workspace size). */
sparrow_status sparrow_spmm_check(const sparrow_matrix* w, const sparrow_spmm_call* call);

/* Runs a validated call. A plan splits it into independent tiles: run
 * sparrow_spmm_prepare once, then sparrow_spmm_task for every tile in [0, tiles) exactly once,
 * in any order and on any threads, then sparrow_spmm_finish. Whole-call kernels (dense and
 * channel: OpenBLAS, on OpenMP's threads where built, else pinned to the threads asked for) do
 * their work inside prepare and report 0 tiles. */
typedef struct sparrow_spmm_plan {
  const sparrow_matrix* w;                  /* the matrix, or its compacted copy in the workspace */
  const struct sparrow_spmm_kernel* kernel; /* w's bound kernel */
  const sparrow_spmm_call* call;
  size_t tiles;
  size_t tile_units; /* row units per tile */
  size_t tile_cols;  /* N columns per tile */
  size_t row_units;  /* rows (CSR/NM) or block rows (BSR) to compute */
  size_t col_tiles;
  const uint32_t* unit_list; /* into workspace, or NULL when all units run */
  const uint8_t* k_mask;     /* into workspace: 1 = K column active; NULL = all */
  int threads;
} sparrow_spmm_plan;

void sparrow_spmm_prepare(sparrow_spmm_plan* plan, const sparrow_matrix* w, const sparrow_spmm_call* call, int threads);
void sparrow_spmm_task(void* plan, size_t tile); /* a sparrow_task_fn */
void sparrow_spmm_finish(const sparrow_spmm_plan* plan);

/* Single call: check, prepare, tiles on sparrow_parallel_for, finish. threads <= 0 means 1. */
sparrow_status sparrow_spmm(const sparrow_matrix* w, const sparrow_spmm_call* call, int threads);

/* 1 when the kernel bound to this matrix builds its X panels from an image window itself
 * (sparrow_spmm_call.x_window), which saves writing and re-reading the unfolded matrix. */
int sparrow_spmm_reads_window(const sparrow_matrix* w);

/* 1 when compiled with OpenMP (SPARROW_OPENMP=1 builds). */
int sparrow_has_openmp(void);

/* The core OpenBLAS chose for its kernels when it loaded ("Haswell", "Prescott"). A DYNAMIC_ARCH
 * OpenBLAS that does not know the CPU model falls back to an SSE3 core; only the environment
 * variable OPENBLAS_CORETYPE, read when the library loads, changes it. */
const char* sparrow_blas_core(void);

/* The kernel bound to this matrix ("spmm_csr_f32_1x64__avx2", "openblas_sgemm"). */
const char* sparrow_kernel_name(const sparrow_matrix* w);

/* ---- kernel list (Kernels/spmm/ukernels.inc: feeds dispatch, tests and benchmarks) ------- */

/* Every kernel of every format, OpenBLAS's dense and channel entries included. The automatic
 * choice for a matrix is the first entry of the active ISA that fits, else the first scalar one
 * (the OpenBLAS entries are listed as scalar). */
typedef struct sparrow_ukernel_desc {
  const char* name; /* "spmm_csr_f32_1x64__avx2" */
  sparrow_format format;
  sparrow_isa isa;
  uint32_t block_rows, block_cols; /* BSR block shape required; 0 = any */
} sparrow_ukernel_desc;

size_t sparrow_ukernel_count(void);
const sparrow_ukernel_desc* sparrow_ukernel_get(size_t index); /* NULL past the end */
/* 1 when this CPU can run kernel `index`. */
int sparrow_ukernel_runnable(size_t index);
/* Binds kernel `index` to this matrix (SIZE_MAX: back to the automatic choice under the active
 * ISA). Fails when the kernel's format or block shape does not match, or the CPU cannot run it.
 * A forced kernel runs whatever SPARROW_ISA says (tests force every runnable kernel in one
 * process). Not thread-safe against calls running on this matrix. */
sparrow_status sparrow_matrix_force_kernel(sparrow_matrix* matrix, size_t index);

/* ---- depthwise convolution --------------------------------------------------------------- */

/* One image in NCHW: input channel c (0..<channels) is an h x w plane; output channel
 * c * multiplier + j (j < multiplier) is an ho x wo plane computed from input channel c with
 * the kh x kw filter w[(c * multiplier + j) * kh * kw ...]:
 *   y[oc][oy][ox] = clamp(bias[oc] + sum_{ky,kx} w[oc][ky][kx] *
 *                         x[c][oy*stride_h + ky*dilation_h - pad_top][ox*stride_w + kx*dilation_w - pad_left])
 * with x outside the plane read as 0. Bottom/right padding follow from ho and wo. */
typedef struct sparrow_dwconv_shape {
  size_t channels, multiplier;
  size_t h, w, kh, kw;
  size_t stride_h, stride_w, dilation_h, dilation_w;
  size_t pad_top, pad_left;
  size_t ho, wo;
} sparrow_dwconv_shape;

/* Validates a shape (sizes >= 1, products within limits, ho/wo reachable). */
sparrow_status sparrow_dwconv_check(const sparrow_dwconv_shape* s);
/* Workspace bytes one thread needs (a padded copy of a band of one input plane's rows, split
 * into stride_w phases so that every tap is a contiguous row, plus the tap offsets; the band is
 * at most 16 KiB where a row allows, so it is multiplied while in L1). */
size_t sparrow_dwconv_workspace_bytes(const sparrow_dwconv_shape* s);

#define SPARROW_DWCONV_AUTO ((size_t)-1)
/* Input channels [c0, c1) of one image (all their output channels), with row microkernel
 * `ukernel` (an index below sparrow_dwconv_ukernel_count(), or SPARROW_DWCONV_AUTO for the
 * active ISA's: callers that run many calls bind sparrow_dwconv_ukernel_auto() once). The shape
 * must have passed sparrow_dwconv_check; workspace is sparrow_dwconv_workspace_bytes, 64-byte
 * aligned. Cannot fail. */
void sparrow_dwconv_channels(const sparrow_dwconv_shape* s, const float* x, const float* w, const float* bias,
                             float clamp_lo, float clamp_hi, float* y, size_t c0, size_t c1, void* workspace,
                             size_t ukernel);
/* The driver: one image's channels in `tasks` contiguous ranges (min(threads, channels)), task t
 * with workspace slice t (workspace_per_task = sparrow_dwconv_workspace_bytes bytes each).
 * prepare, then sparrow_dwconv_task for each t; no finish. Cannot fail once checked. */
typedef struct sparrow_dwconv_plan {
  const sparrow_dwconv_shape* shape;
  const float *x, *w, *bias;
  float lo, hi;
  float* y;
  void* workspace;
  size_t workspace_per_task, tasks, ukernel;
} sparrow_dwconv_plan;
void sparrow_dwconv_prepare(sparrow_dwconv_plan* plan, const sparrow_dwconv_shape* s, const float* x, const float* w,
                            const float* bias, float clamp_lo, float clamp_hi, float* y, void* workspace, int threads,
                            size_t ukernel);
void sparrow_dwconv_task(void* plan, size_t task); /* a sparrow_task_fn */
/* Every channel of one image, split over `threads` on sparrow_parallel_for (without OpenMP:
 * serially, in one task). The workspace holds tasks * sparrow_dwconv_workspace_bytes bytes,
 * 64-byte aligned. */
sparrow_status sparrow_dwconv(const sparrow_dwconv_shape* s, const float* x, const float* w, const float* bias,
                              float clamp_lo, float clamp_hi, float* y, void* workspace, size_t workspace_bytes,
                              int threads);

/* Depthwise convolution with channels in the vector lanes (Kernels/conv/dwcv.c), multiplier 1:
 * blocks of L channels (L = sparrow_dwcv_lanes(isa): 16 AVX-512, 8 AVX2, 4 NEON, 1 scalar)
 * transposed pixel-major, padded, convolved and transposed back; the same result as
 * sparrow_dwconv up to rounding. `isa` is a sparrow_isa the CPU runs, or -1 for the active one;
 * weights and bias are packed for that ISA's lanes (sparrow_dwcv_pack, packed_floats floats).
 * The workspace holds min(threads, blocks) * sparrow_dwcv_workspace_bytes bytes, 64-byte
 * aligned (0 bytes: the window is too large). */
size_t sparrow_dwcv_lanes(int isa);
size_t sparrow_dwcv_workspace_bytes(const sparrow_dwconv_shape* s, int isa);
size_t sparrow_dwcv_packed_floats(const sparrow_dwconv_shape* s, int isa);
void sparrow_dwcv_pack(const sparrow_dwconv_shape* s, int isa, const float* w, const float* bias, float* packed);
sparrow_status sparrow_dwcv(const sparrow_dwconv_shape* s, int isa, const float* x, const float* packed, float clamp_lo,
                            float clamp_hi, float* y, void* workspace, size_t workspace_bytes, int threads);

/* Dense direct-convolution kernels (Kernels/conv/dconv/ukernels.inc), like the depthwise list. */
size_t sparrow_dconv_ukernel_count(void);
const char* sparrow_dconv_ukernel_name(size_t index); /* NULL past the end */
int sparrow_dconv_ukernel_runnable(size_t index);
size_t sparrow_dconv_ukernel_auto(void);
/* Pixel-major dense direct-convolution kernels (Kernels/conv/dconv/pukernels.inc), likewise. */
size_t sparrow_pconv_ukernel_count(void);
const char* sparrow_pconv_ukernel_name(size_t index); /* NULL past the end */
int sparrow_pconv_ukernel_runnable(size_t index);
size_t sparrow_pconv_ukernel_auto(void);
size_t sparrow_dwconv_ukernel_count(void);
const char* sparrow_dwconv_ukernel_name(size_t index); /* NULL past the end */
int sparrow_dwconv_ukernel_runnable(size_t index);
/* The row microkernel SPARROW_DWCONV_AUTO picks under the active ISA, its index and name. */
size_t sparrow_dwconv_ukernel_auto(void);
const char* sparrow_dwconv_kernel_name(void);

/* im2col for a k x k convolution with the same window geometry (multiplier ignored): channels
 * [c0, c0 + count) of one image become rows (c, ky, kx) of `col`, ho * wo floats each, zeros
 * where the window reaches into the padding. The shape must have passed
 * sparrow_dwconv_check; c0 + count <= channels. Cannot fail. */
void sparrow_im2col(const sparrow_dwconv_shape* s, const float* x, size_t c0, size_t count, float* col);
/* The same for output rows [oy0, oy1) only: rows of `col` are (oy1 - oy0) * wo floats (columns
 * oy0 * wo ... of the whole matrix). oy0 < oy1 <= ho. */
void sparrow_im2col_rows(const sparrow_dwconv_shape* s, const float* x, size_t c0, size_t count, size_t oy0, size_t oy1,
                         float* col);
/* The same with rows of `col` ld >= (oy1 - oy0) * wo floats apart (an image's block of columns
 * inside a wider matrix: a batch unfolded side by side without a second copy). */
void sparrow_im2col_rows_ld(const sparrow_dwconv_shape* s, const float* x, size_t c0, size_t count, size_t oy0,
                            size_t oy1, float* col, size_t ld);

/* ---- direct sparse convolution (k x k, groups = 1) ---------------------------------------- */

/* A weight [cout, channels, kh, kw] (dense, zeros dropped) bound to one window geometry
 * (`shape`: channels = input channels; multiplier ignored). Output channel m, pixel (oy, ox):
 *   y = clamp(bias[m] + sum w[m][c][ky][kx] * x[c][oy*sh + ky*dh - pt][ox*sw + kx*dw - pl])
 * computed without im2col: input planes are padded once into the workspace, then every output
 * row is a sum of shifted rows (the depthwise row microkernels). */
typedef struct sparrow_direct_conv sparrow_direct_conv;
sparrow_status sparrow_direct_conv_create(const sparrow_dwconv_shape* shape, size_t cout, const float* w,
                                          sparrow_direct_conv** out);
/* The same convolution with a dense weight (zeros kept): panels of output channels multiplied
 * straight from the padded planes by a register-blocked kernel (Kernels/conv/dconv/dconv.h),
 * for dense layers where building im2col panels costs more than it saves. Every function below
 * takes either kind; in dense mode `ukernel` indexes the dense kernel list
 * (sparrow_dconv_ukernel_*), active-channel lists cost in proportion to the active input
 * channels (prepare copies their weights into the workspace) and the 6-row panels holding an
 * active output channel, and nnz counts the weight's nonzeros. */
sparrow_status sparrow_direct_conv_create_dense(const sparrow_dwconv_shape* shape, size_t cout, const float* w,
                                                sparrow_direct_conv** out);
int sparrow_direct_conv_is_dense(const sparrow_direct_conv* conv);
/* The same dense convolution, pixel-major (Kernels/conv/dconv/dconv.h): blocks of 6 output
 * pixels of the flattened output grid x 16 output channels, so narrow and strided outputs fill
 * every lane. is_dense is 1 for it too, is_pixel 1 only for it; `ukernel` then indexes the
 * pixel-major list (sparrow_pconv_ukernel_*); output lists skip 16-channel panels without an
 * active channel. A panel's columns (input channel x tap) that are zero in all its 16 channels
 * (N:M pruned with the pattern shared by blocks of 16 rows, `prune --share-rows 16`) are dropped
 * when that removes at least a tenth of the weight, so their FMAs are skipped; pixel_columns is
 * the columns kept over all panels (panels x K when none are dropped). */
sparrow_status sparrow_direct_conv_create_pixel(const sparrow_dwconv_shape* shape, size_t cout, const float* w,
                                                sparrow_direct_conv** out);
int sparrow_direct_conv_is_pixel(const sparrow_direct_conv* conv);
size_t sparrow_direct_conv_pixel_columns(const sparrow_direct_conv* conv);
void sparrow_direct_conv_free(sparrow_direct_conv* conv);
/* Bytes of workspace (the padded input), 64-byte aligned; and the nonzeros kept. */
size_t sparrow_direct_conv_workspace_bytes(const sparrow_direct_conv* conv);
size_t sparrow_direct_conv_nnz(const sparrow_direct_conv* conv);
/* One image, all channels, over `threads` on sparrow_parallel_for. */
sparrow_status sparrow_direct_conv_run(const sparrow_direct_conv* conv, const float* x, const float* bias,
                                       float clamp_lo, float clamp_hi, float* y, void* workspace,
                                       size_t workspace_bytes, int threads);

/* A linear layer on the pixel-major kernel (Kernels/dense/plinear.c): Y[r, o] = clamp(bias[o] +
 * sum_k A[r, k] W[o, k], lo, hi) for row-major A (rows x K, lda floats apart) and Y (rows x
 * out, ldy apart), with no transpose of either: blocks of 6 token rows (broadcast) x 16 outputs
 * (a weight panel, K-major). A panel's columns that are zero in all its 16 rows (N:M with the
 * pattern shared by 16 rows, `prune --share-rows 16`) are dropped, so their FMAs are skipped;
 * `columns` is the (panel, column) pairs kept (panels x K when none). W is out x K, row-major. */
typedef struct sparrow_plinear sparrow_plinear;
sparrow_status sparrow_plinear_create(size_t out, size_t k, const float* w, sparrow_plinear** linear);
void sparrow_plinear_free(sparrow_plinear* linear);
size_t sparrow_plinear_columns(const sparrow_plinear* linear);
/* prepare (validates; then tasks t < tasks in any order on any threads). `ukernel`: a
 * pixel-major kernel index (sparrow_pconv_ukernel_*) or SPARROW_DWCONV_AUTO. lda >= K, ldy >=
 * out; bias NULL or `out` floats. */
typedef struct sparrow_plinear_plan {
  const sparrow_plinear* linear;
  const float* a;
  size_t rows, lda;
  const float* bias;
  float lo, hi;
  float* y;
  size_t ldy, tasks, row_chunks;
  void (*pfn)(size_t, const float*, const size_t*, const float* const*, size_t, size_t, const float*, float, float,
              float*, size_t, size_t, float*, int, int);
  /* the kernel entry's two- and four-panel forms (sparrow_pconv_wide_fn), run on adjacent panels
   * that all keep every column; NULL: one panel per call */
  void (*pfn2)(size_t, const float*, size_t, const size_t*, const float* const*, size_t, size_t, const float*, float,
               float, float*, size_t, size_t, float*, int, int);
  void (*pfn4)(size_t, const float*, size_t, const size_t*, const float* const*, size_t, size_t, const float*, float,
               float, float*, size_t, size_t, float*, int, int);
} sparrow_plinear_plan;
sparrow_status sparrow_plinear_prepare(sparrow_plinear_plan* plan, const sparrow_plinear* linear, const float* a,
                                       size_t rows, size_t lda, const float* bias, float clamp_lo, float clamp_hi,
                                       float* y, size_t ldy, int threads, size_t ukernel);
void sparrow_plinear_task(void* plan, size_t task);
/* A plain product on the same kernel, one thread, for small activation x activation products
 * (attention's Q·Kᵀ and P·V per head): C (m x n, ldc) = A (m x k, lda) · B', where B' is B
 * (k x n, ldb) or, with trans_b, the transpose of B (n x k, ldb); B' is packed into the
 * workspace (64-byte aligned, sparrow_panel_gemm_workspace_bytes(n, k)) first. */
size_t sparrow_panel_gemm_workspace_bytes(size_t n, size_t k);
sparrow_status sparrow_panel_gemm(size_t m, size_t n, size_t k, const float* a, size_t lda, const float* b, size_t ldb,
                                  int trans_b, float* c, size_t ldc, void* workspace, size_t workspace_bytes);

/* Active-channel lists (runtime-pruning gate), with the SpMM contract: output channels not in
 * out_channels are written as exact 0 planes (not the bias); input channels not in in_channels
 * are computed as zero and never read (their planes are not padded). Work is in proportion to
 * the active nonzeros (with an input list, one O(nnz) pass copies them into the workspace). */
typedef struct sparrow_direct_conv_lists {
  const uint32_t* out_channels; /* strictly increasing, or NULL for all */
  size_t n_out_channels;
  const uint32_t* in_channels; /* strictly increasing, or NULL for all */
  size_t n_in_channels;
} sparrow_direct_conv_lists;
/* Workspace bytes with lists (>= sparrow_direct_conv_workspace_bytes; 64-byte aligned). */
size_t sparrow_direct_conv_lists_workspace_bytes(const sparrow_direct_conv* conv, int has_out, int has_in);
/* Validates the lists and the workspace. */
sparrow_status sparrow_direct_conv_lists_check(const sparrow_direct_conv* conv, const sparrow_direct_conv_lists* lists,
                                               const void* workspace, size_t workspace_bytes);
/* The driver, after a successful check (lists NULL: all channels): prepare (with an input
 * list it copies the active nonzeros into the workspace); sparrow_direct_conv_pad_task for
 * every t < pad_tasks (input planes padded into the workspace); once all are done,
 * sparrow_direct_conv_rows_task for every t < row_tasks; then finish (zeros for inactive
 * output channels; compacted rows moved into place). `ukernel`: a depthwise row kernel index,
 * or SPARROW_DWCONV_AUTO for the one bound when the convolution was created. Cannot fail. */
typedef struct sparrow_direct_conv_plan {
  const sparrow_direct_conv* conv;
  sparrow_direct_conv_lists lists;
  const float* x;
  const float* bias;
  float lo, hi;
  float* y;
  void* workspace;
  size_t n_in, n_out, pad_tasks, row_tasks;
  void (*fn)(size_t, size_t, size_t, const float*, size_t, const size_t*, const float*, float, float, float, float*);
  /* dense mode: the dense microkernel (dconv.h) */
  void (*dfn)(size_t, const float*, const size_t*, const float*, size_t, size_t, const float*, float, float, float*,
              size_t, int, int);
  /* pixel mode: the pixel-major microkernel (dconv.h) and the pixel chunks each panel range is
   * split into (row_tasks = panel ranges * pixel_chunks) */
  void (*pfn)(size_t, const float*, const size_t*, const float* const*, size_t, size_t, const float*, float, float,
              float*, size_t, size_t, float*, int, int);
  /* pixel mode: the kernel entry's two- and four-panel forms (sparrow_pconv_wide_fn) or NULL */
  void (*pfn2)(size_t, const float*, size_t, const size_t*, const float* const*, size_t, size_t, const float*, float,
               float, float*, size_t, size_t, float*, int, int);
  void (*pfn4)(size_t, const float*, size_t, const size_t*, const float* const*, size_t, size_t, const float*, float,
               float, float*, size_t, size_t, float*, int, int);
  size_t pixel_chunks;
  /* pixel mode, images run as one (sparrow_direct_conv_run_batch; 1 otherwise): x and y hold
   * `images` consecutive images, the workspace `images` sets of padded planes */
  size_t images;
  /* A residual added to the output (after the bias), then ReLU when residual_relu: set by
   * sparrow_direct_conv_set_residual, NULL (prepare's default) for none. */
  const float* residual;
  int residual_relu;
  /* Pixel mode with an output list that leaves whole panels' worth of rows out (prepare decides):
   * the kept rows' weights are gathered into full panels in the workspace, `conv` is a view of
   * the convolution with only those rows, `y` and `bias` their compact copies; finish() moves
   * each kept row to its place in out_y and writes zeros to the others. out_y NULL: not compacted. */
  float* out_y;
  const sparrow_direct_conv* out_conv;
} sparrow_direct_conv_plan;
void sparrow_direct_conv_prepare(sparrow_direct_conv_plan* plan, const sparrow_direct_conv* conv,
                                 const sparrow_direct_conv_lists* lists, const float* x, const float* bias,
                                 float clamp_lo, float clamp_hi, float* y, void* workspace, int threads,
                                 size_t ukernel);
/* Batch: `images` consecutive images as one multiply, without lists. In pixel mode the 6-pixel
 * blocks of every image share each weight panel's pass (a panel streams once per batch, not once
 * per image, and the per-call costs are paid once); the other modes loop over the images inside
 * the rows tasks. Workspace: sparrow_direct_conv_batch_workspace_bytes. */
size_t sparrow_direct_conv_batch_workspace_bytes(const sparrow_direct_conv* conv, size_t images);
/* Pixel mode only (1 image otherwise: use prepare per image): the plan for the batch, whose pad
 * and rows tasks then run as for one image (no finish needed without lists). */
void sparrow_direct_conv_prepare_batch(sparrow_direct_conv_plan* plan, const sparrow_direct_conv* conv, size_t images,
                                       const float* x, const float* bias, float clamp_lo, float clamp_hi, float* y,
                                       void* workspace, int threads, size_t ukernel);
sparrow_status sparrow_direct_conv_run_batch(const sparrow_direct_conv* conv, size_t images, const float* x,
                                             const float* bias, float clamp_lo, float clamp_hi, float* y,
                                             void* workspace, size_t workspace_bytes, int threads);
/* Max pooling (Kernels/conv/maxpool.c) of `planes` float32 planes h x w into ho x wo: per output
 * row oy the window's input rows row_start[oy] + ky * dilation_h for ky in [row_lo[oy],
 * row_hi[oy]) (none: the row is -FLT_MAX), per kernel column kx the outputs [col_lo[kx],
 * col_hi[kx]) whose tap (input column i * stride_w + kx * dilation_w - pad_left) is inside; taps
 * outside count as -inf. Folds `v > m ? v : m` from the window's first in-input row, then per
 * output from -FLT_MAX in kx order. `row`: w + 4 floats of scratch per caller. */
typedef struct sparrow_maxpool_shape {
  size_t h, w, ho, wo, dilation_h, kw, stride_w, dilation_w, pad_left;
  const ptrdiff_t* row_start; /* ho */
  const ptrdiff_t* row_lo;    /* ho */
  const ptrdiff_t* row_hi;    /* ho */
  const ptrdiff_t* col_lo;    /* kw */
  const ptrdiff_t* col_hi;    /* kw */
} sparrow_maxpool_shape;
void sparrow_maxpool_f32(const sparrow_maxpool_shape* shape, const float* x, float* y, size_t planes, float* row);
/* The same over uint8 planes (int8 with flip = 0x80: the bytes compared as x ^ 0x80); a row with
 * no input tap is the type's minimum. `row`: w + 64 bytes of scratch per caller. */
void sparrow_maxpool_u8(const sparrow_maxpool_shape* shape, const uint8_t* x, uint8_t* y, size_t planes, uint8_t* row,
                        uint8_t flip);

/* A residual join fused into the convolution (a ResNet block's Add, and the ReLU after it):
 * y = relu?(conv(x) + bias + residual), `residual` in y's layout (the plan's images), added by
 * each rows task to the outputs it has just written, while they are in cache. Dense modes
 * (pixel-major and channel-major) without lists, prepared without a clamp (the ReLU comes after
 * the sum: pass relu instead); the sum is y + residual as one float add, the ReLU `0 >= v ? 0 :
 * v` (NaN stays NaN, -0 becomes +0), as the separate Add and Relu steps compute them. */
sparrow_status sparrow_direct_conv_set_residual(sparrow_direct_conv_plan* plan, const float* residual, int relu);
void sparrow_direct_conv_pad_task(void* plan, size_t task);  /* a sparrow_task_fn */
void sparrow_direct_conv_rows_task(void* plan, size_t task); /* a sparrow_task_fn */
void sparrow_direct_conv_finish(const sparrow_direct_conv_plan* plan);
/* All phases for one image, over `threads` on sparrow_parallel_for. */
sparrow_status sparrow_direct_conv_run_lists(const sparrow_direct_conv* conv, const sparrow_direct_conv_lists* lists,
                                             const float* x, const float* bias, float clamp_lo, float clamp_hi,
                                             float* y, void* workspace, size_t workspace_bytes, int threads);

/* ---- row-wise kernels: softmax, GELU, layer normalisation (Kernels/rowwise) --------------- */

/* What one row kernel computes (Kernels/rowwise/rowwise.h documents each, with its accuracy). */
typedef enum sparrow_row_op {
  SPARROW_ROW_SOFTMAX = 0,   /* y = softmax(alpha * x + mask) over the row */
  SPARROW_ROW_GELU_ERF = 1,  /* y = x/2 (1 + erf(x / sqrt 2)) */
  SPARROW_ROW_GELU_TANH = 2, /* y = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
  SPARROW_ROW_LAYERNORM = 3, /* y = (x - mean) / sqrt(var + epsilon) * scale + bias */
} sparrow_row_op;

#define SPARROW_ROW_AUTO ((size_t)-1)
size_t sparrow_row_ukernel_count(void);
const char* sparrow_row_ukernel_name(size_t index); /* NULL past the end */
int sparrow_row_ukernel_op(size_t index);           /* a sparrow_row_op; -1 past the end */
int sparrow_row_ukernel_runnable(size_t index);
/* The kernel SPARROW_ROW_AUTO picks for `op` under the active ISA (resolved once per ISA). */
size_t sparrow_row_ukernel_auto(sparrow_row_op op);

/* `rows` rows of n floats (n >= 1): row r of x starts at x + r * x_stride, of y at
 * y + r * y_stride (bytes; y may be x, else they must not overlap). The driver runs rows
 * [t * rows_per_task, (t + 1) * rows_per_task) as task t (tasks: sparrow_rows_tasks), with
 * kernel `ukernel` (an index of the list whose op is `op`, or SPARROW_ROW_AUTO: callers that
 * run many calls bind sparrow_row_ukernel_auto once). Callers check sizes and pointers (the
 * Swift steps do, at plan time); the driver cannot fail. */
typedef struct sparrow_rows_call {
  sparrow_row_op op;
  size_t ukernel;
  size_t rows, n, rows_per_task;
  const float* x;
  size_t x_stride;
  float* y;
  size_t y_stride;
  /* softmax: the scale of x, and an additive mask (NULL: none): row r reads n floats at
   * mask + mask_rows[r] (element offsets), or at mask itself when mask_rows is NULL. */
  float alpha;
  const float* mask;
  const uint32_t* mask_rows;
  /* layernorm: n floats each or NULL (ones, zeros); per-row statistics out, each NULL or
   * `rows` floats. */
  const float* scale;
  const float* bias;
  float epsilon;
  float* mean;
  float* inv_std;
} sparrow_rows_call;
size_t sparrow_rows_tasks(const sparrow_rows_call* call);
void sparrow_rows_task(void* call, size_t task); /* a sparrow_task_fn; `call` a sparrow_rows_call */

/* ---- transpose -------------------------------------------------------------------------------- */

/* dst[c * dst_stride + r] = src[r * src_stride + c] for r < rows, c < cols (strides in
 * elements; src and dst must not overlap): the active ISA's blocked transpose (AVX2 8x8, NEON
 * 4x4 register blocks, else scalar 16x16). Cannot fail. */
void sparrow_transpose_f32(size_t rows, size_t cols, const float* src, size_t src_stride, float* dst,
                           size_t dst_stride);
/* The same on up to `threads` threads (bands of columns), one thread below
 * SPARROW_TRANSPOSE_MT_MIN elements, where waking a second costs more than it saves. */
#define SPARROW_TRANSPOSE_MT_MIN 16384
void sparrow_transpose_f32_threads(size_t rows, size_t cols, const float* src, size_t src_stride, float* dst,
                                   size_t dst_stride, int threads);

/* Pins OpenBLAS's thread count (it must not oversubscribe inside our parallel regions). */
void sparrow_blas_set_threads(int threads);

#ifdef __cplusplus
}
#endif
#endif
