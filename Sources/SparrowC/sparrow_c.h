/* Sparrow's C ABI: the one interface of libSparrowC.so (Swift library product `SparrowC`, built
 * by `swift build -c release --product SparrowC`). The Python package loads it with ctypes; any
 * C caller can use it the same way.
 *
 * Conventions
 * - Every function that can fail returns a sparrow_status; SPARROW_OK is 0. After a failure,
 *   sparrow_error_message() gives the message (owned by the library, valid on the calling thread
 *   until its next call into the library). Bad models, options and inputs return a status: the
 *   library never aborts its host process on data from outside.
 * - Handles are opaque. A sparrow_session is freed with sparrow_session_free (NULL is fine).
 *   Calls on one session are serialised by the library (one run at a time; other sessions run
 *   in parallel). Sessions may be used from any thread.
 * - Strings and buffers the library hands out (JSON reports, output tensors' data) are the
 *   caller's, freed with sparrow_free. Everything the caller passes in (paths, bytes, options,
 *   input data) is only read during the call and stays the caller's.
 * - Options and reports are UTF-8 JSON objects; unknown option keys are refused.
 */
#ifndef SPARROW_C_H
#define SPARROW_C_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sparrow_status {
  SPARROW_OK = 0,
  SPARROW_INVALID_ARGUMENT = 1, /* options, names, dtypes, shapes, NULL where a value is needed */
  SPARROW_INVALID_MODEL = 2,    /* not a model Sparrow can load, or cannot plan for these inputs */
  SPARROW_RUNTIME_ERROR = 3,    /* a run, pruning or benchmark failed */
  SPARROW_IO_ERROR = 4,         /* a file could not be read or written */
} sparrow_status;

/* Element types: ONNX's TensorProto.DataType codes. */
enum {
  SPARROW_FLOAT32 = 1,
  SPARROW_UINT8 = 2,
  SPARROW_INT8 = 3,
  SPARROW_INT32 = 6,
  SPARROW_INT64 = 7,
  SPARROW_BOOL = 9, /* one byte per element, 0 or 1 */
  SPARROW_FLOAT64 = 11,
};

#define SPARROW_MAX_RANK 32

/* A dense row-major tensor. As an input: name, dtype, rank, shape, data (the caller's, read
 * during the call only) and nbytes (exactly the elements' bytes). As an output: name is NULL
 * (outputs come in the order asked for); the library fills the rest, data is allocated by the
 * library (64-byte aligned, NULL when nbytes is 0) and freed by the caller with sparrow_free. */
typedef struct sparrow_tensor {
  const char *name;
  int32_t dtype;
  int32_t rank;
  int64_t shape[SPARROW_MAX_RANK];
  void *data;
  uint64_t nbytes;
} sparrow_tensor;

typedef struct sparrow_session sparrow_session;

/* The library's version, a static string. */
const char *sparrow_version(void);
/* The message of this thread's last failed call, or NULL. Owned by the library. */
const char *sparrow_error_message(void);
/* Frees a string or buffer the library handed out. NULL is fine. */
void sparrow_free(void *p);
/* The OPENBLAS_CORETYPE this process should have been started with ("Haswell"), or NULL when
 * OpenBLAS's own choice is right. OpenBLAS reads the variable only when it loads, so a host
 * asks in a child process and sets it before loading the library (the Python package does).
 * Static string. */
const char *sparrow_blas_core_override(void);

/* Loads a model from `path` (when not NULL) or from `nbytes` bytes at `bytes`, with options
 * {"threads": int, "format": "auto"|"dense"|"csr"|"nm"|"bsr"|"channel", "gate": "off"|"zero"|
 * "topk:R"|"model", "optimize": bool, "conv": "measure"|"im2col"|"direct"|"pixel", "linear":
 * "measure"|"kernels"|"panel", "gate_layers": str, "max_tensor_mib": int} (all optional; `options`
 * may be NULL). On success *out is a new
 * session the caller frees with sparrow_session_free. Plans are made per input shape, on first
 * use, and cached. */
sparrow_status sparrow_session_create(const char *path, const void *bytes, size_t nbytes, const char *options,
                                      sparrow_session **out);
void sparrow_session_free(sparrow_session *session);

/* The declared inputs and outputs as JSON: {"inputs": [{"name", "dtype" (a Sparrow dtype name
 * or null), "shape" (ints, dimension names as strings, or null: unknown)}], "outputs": [...]}.
 * *json is the caller's (sparrow_free). */
sparrow_status sparrow_session_io(sparrow_session *session, char **json);

/* Runs the model on `n_inputs` inputs and returns the `n_outputs` outputs named in
 * `output_names`, in that order, into the caller's array `outputs` (their data the caller's,
 * sparrow_free). On failure nothing is left allocated in `outputs`. Each input is copied once
 * into the plan's buffers and each output once out of them. */
sparrow_status sparrow_session_run(sparrow_session *session, const sparrow_tensor *inputs, size_t n_inputs,
                                   const char *const *output_names, size_t n_outputs, sparrow_tensor *outputs);

/* `sparrow inspect --json` for a model at `path` (or `nbytes` bytes at `bytes`), options as for
 * sessions (gate ignored) plus "shapes": {"name": [dims]}. *json is the caller's. */
sparrow_status sparrow_inspect(const char *path, const void *bytes, size_t nbytes, const char *options, char **json);

/* `sparrow prune`: reads `input_path`, writes the pruned model to `output_path`; options
 * {"method", "sparsity", "scope", "skip_first_last", "pattern", "block", "shrink", "seed", "groups",
 * "keep_one_per_group", "calibration": ["NAME=FILE.npy", ...] (wanda, sparsegpt, channel-taylor),
 * "share_rows": int (N:M: blocks of output rows keeping one pattern)}.
 * *report_json (per layer: name, op, shape, newShape, weights, zerosBefore, zerosAfter, note,
 * pruned; and notes) is the caller's. */
sparrow_status sparrow_prune(const char *input_path, const char *output_path, const char *options,
                             char **report_json);

/* `sparrow bench model`: `request` has the CLI's options under JSON names ("model", "inputs":
 * ["NAME=FILE.npy"], "shapes": ["NAME=1x3x64x64"], "methods", "sparsity", "formats", "threads"
 * as comma-separated strings, "rounds", "repeat", "warmup", "block", "channel_method",
 * "runtimes", "cache_dir", "seed", "quick", "full", "calibration": ["NAME=FILE.npy"]...). Writes
 * no report files; *report_json
 * is the report the CLI saves as .json, the caller's. */
sparrow_status sparrow_bench(const char *request, char **report_json);

#ifdef __cplusplus
}
#endif
#endif
