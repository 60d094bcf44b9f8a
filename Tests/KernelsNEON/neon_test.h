/* Shared by the kernel test driver's files (neon_test.c, rejections.c). */
#ifndef SPARROW_NEON_TEST_H
#define SPARROW_NEON_TEST_H
#include <stddef.h>
#include <stdint.h>

extern size_t g_passed, g_failed;
extern char g_case[512];  /* description of the case being run, for failure messages */
extern long g_case_index; /* -1 outside the numbered cases */

/* Counts a failure and prints it with the seed and case. */
void fail(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

/* Importers and packers reject malformed data with the documented status. */
void test_rejections(void);

/* Depthwise convolution kernels against a plain loop (dwconv_test.c). */
void test_dwconv(uint64_t seed, long cases, int scalar_only);
void test_dwcv(uint64_t seed, long cases, int scalar_only);
/* Dense direct convolution kernels against a plain loop (dconv_test.c). */
void test_dconv(uint64_t seed, long cases, int scalar_only);

/* Row-wise kernels (softmax, GELU, layer normalisation) against double references (rowwise_test.c). */
void test_rowwise(uint64_t seed, long cases, int scalar_only);

/* The matrix transpose (active ISA and scalar) against a plain loop (transpose_test.c). */
void test_transpose(uint64_t seed, long cases);
/* Max pooling against a plain window loop (maxpool_test.c). */
void test_maxpool(uint64_t seed, long cases);
/* Sparrow's thread pool: every task once, sleeping workers, nested and concurrent callers (pool_test.c). */
void test_pool(uint64_t seed, long cases);

/* Packed dense (GEMM) kernels reading X as an image window, against the definition (window_test.c). */
void test_window(uint64_t seed, long cases, int scalar_only);
/* The int8 GEMM kernels against a plain integer loop, bit for bit (qgemm_test.c). */
void test_qgemm(uint64_t seed, long cases, int scalar_only);
/* The direct int8 convolution kernels against a plain integer convolution, bit for bit (qconv_test.c). */
void test_qconv(uint64_t seed, long cases, int scalar_only);
/* The int8 epilogue's reference (qgemm_test.c): c = the accumulator with the zero-point term and
 * the bias applied, stored at out as the output type (scale, clamp, round half to even, zero point,
 * bounds; or dequantized float). */
struct sparrow_qgemm_epilogue;
void qref_store(const struct sparrow_qgemm_epilogue* e, size_t row, int64_t c, void* out);
/* Quantize, dequantize and int8 add kernels against plain loops, and the activation packers
 * (qelem_test.c). */
void test_qelem(uint64_t seed, long cases, int scalar_only);
/* Input-gated linear kernels against a masked dense loop (gate_test.c). */
void test_gate(uint64_t seed, long cases, int scalar_only);

#endif
