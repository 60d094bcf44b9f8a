/*
 * Sparrow int8 GEMM (Kernels/qgemm): Y[M x N] = epilogue(W[M x K] . (X[K x N] - x_zero)) with
 * W int8 (symmetric: its zero point is 0), X uint8 (int8 activations are packed with their sign
 * bit flipped, i.e. as uint8 with zero point + 128), int32 accumulation (wrapping, as the
 * hardware's and ONNX Runtime's).
 *
 * Packing (qgemm/qgemm.h has the layouts): weights once per model (sparrow_qgemm_pack_w, with
 * the panel height MR of the kernel that will run them, and each row's sum for the zero-point
 * correction acc - x_zero * rowsum); activations per call (sparrow_qgemm_pack_x: K padded to a
 * multiple of 4, groups of 4 k of one column side by side, each group's row of N columns stored
 * at a stride of N rounded up to 16 columns, 64 bytes: sparrow_qgemm_x_stride).
 *
 * Epilogue, per output (row m, column n), c = acc - x_zero * row_sums[m] + bias[m]:
 *   requantize (out u8/s8): y = clamp(round_half_even(float(c) * scale[m]) + y_zero, q_lo, q_hi)
 *     (the float product is clamped to [q_lo - y_zero, q_hi - y_zero] first, as MLAS does);
 *     q_lo/q_hi carry a fused Relu/Clip;
 *   dequantize (out f32): y = clamp(float(c) * scale[m] + fbias[m], lo, hi).
 * Kernels never allocate, never fail, and give the same bits on every ISA.
 */
#ifndef SPARROW_QGEMM_H
#define SPARROW_QGEMM_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { SPARROW_QOUT_U8 = 0, SPARROW_QOUT_S8 = 1, SPARROW_QOUT_F32 = 2 };

typedef struct sparrow_qgemm_epilogue {
  const int32_t* row_sums;    /* M values from sparrow_qgemm_pack_w */
  int32_t x_zero;             /* the activations' zero point in the packed (uint8) domain */
  const int32_t* bias;        /* M int32 values added to the accumulator, or NULL */
  const float* scale;         /* M values: x_scale * w_scale[m] / y_scale (requantize) or x_scale * w_scale[m] */
  const float* fbias;         /* dequantize: M floats added after scaling, or NULL */
  int32_t y_zero, q_lo, q_hi; /* requantize: zero point and bounds of the output type (and activation) */
  float lo, hi;               /* dequantize: clamp */
  int32_t out;                /* SPARROW_QOUT_* */
  void* y;                    /* element (m, n) at y + m * y_row_stride + n * y_col_stride (elements) */
  ptrdiff_t y_row_stride, y_col_stride;
} sparrow_qgemm_epilogue;

/* The kernel list (qgemm/ukernels.inc): count, name, panel height, whether this CPU runs it,
 * and the one the active ISA chooses (the best runnable entry of its level). */
size_t sparrow_qgemm_count(void);
const char* sparrow_qgemm_name(size_t i);
uint32_t sparrow_qgemm_mr(size_t i);
int sparrow_qgemm_runnable(size_t i);
size_t sparrow_qgemm_auto(void);

/* Bytes of W packed for panel height mr. */
size_t sparrow_qgemm_packed_bytes(size_t m, size_t k, uint32_t mr);
/* Packs W (element (m, k) at w[m * m_stride + k * k_stride]) into `out` and writes row_sums[m]. */
void sparrow_qgemm_pack_w(const int8_t* w, size_t m, size_t k, ptrdiff_t m_stride, ptrdiff_t k_stride, uint32_t mr,
                          int8_t* out, int32_t* row_sums);
/* Packs W for kernel i of the list, in its layout (int8, or int16 for the "w16" kernels):
 * sparrow_qgemm_kernel_packed_bytes(i, m, k) bytes at `out` (aligned to 8), and row_sums. */
size_t sparrow_qgemm_kernel_packed_bytes(size_t i, size_t m, size_t k);
void sparrow_qgemm_kernel_pack_w(size_t i, const int8_t* w, size_t m, size_t k, ptrdiff_t m_stride, ptrdiff_t k_stride,
                                 void* out, int32_t* row_sums);
/* Columns between two k groups of packed X: n rounded up to a multiple of 16, so that each
 * group's row starts on a 64-byte boundary (a row of 196 columns, 784 bytes, made three loads in
 * four straddle two cache lines: the VNNI kernel ran at 2/3 of its speed). The pad holds zeros. */
size_t sparrow_qgemm_x_stride(size_t n);
/* Bytes of X packed: ceil(k / 4) * 4 * sparrow_qgemm_x_stride(n). */
size_t sparrow_qgemm_packed_x_bytes(size_t k, size_t n);
/* Packs X (element (k, n) at x[k * k_stride + n * n_stride]); flip_sign = 1 reads int8 data and
 * stores it as uint8 (x ^ 0x80; the caller adds 128 to the zero point). */
void sparrow_qgemm_pack_x(const uint8_t* x, size_t k, size_t n, ptrdiff_t k_stride, ptrdiff_t n_stride, int flip_sign,
                          uint8_t* out);
/* Packs the im2col view of one image x [c, h, w] (uint8, or int8 with flip_sign) for a convolution
 * with kernel kh x kw, strides, dilations and leading pads, ho x wo outputs: K = c * kh * kw rows
 * (ONNX's weight order) by N = ho * wo columns, `pad` (the zero point, unflipped) outside x. */
void sparrow_qgemm_pack_conv(const uint8_t* x, size_t c, size_t h, size_t w, size_t kh, size_t kw, size_t sh, size_t sw,
                             size_t dh, size_t dw, ptrdiff_t pad_top, ptrdiff_t pad_left, size_t ho, size_t wo,
                             uint8_t pad, int flip_sign, uint8_t* out);
/* The same convolution with K in tap-major order, for c a multiple of 4: k = (ky * kw + kx) * c + ic
 * (the weights' columns permuted to match), so each group of 4 k is 4 channels of one tap. The
 * input is first copied once into `work` (sparrow_qgemm_pack_conv_c4_work_bytes), padded, 4
 * channels per 32-bit word and each row split into its sw column phases; every group's row of wo
 * outputs is then one contiguous copy (the per-tap form above bounds-checks and interleaves each
 * of its 4 rows: ~0.27 ms per ResNet-18 3x3 layer, as long as the GEMM itself on the VNNI core). */
size_t sparrow_qgemm_pack_conv_c4_work_bytes(size_t c, size_t kh, size_t kw, size_t sh, size_t sw, size_t dh, size_t dw,
                                             size_t ho, size_t wo);
void sparrow_qgemm_pack_conv_c4(const uint8_t* x, size_t c, size_t h, size_t w, size_t kh, size_t kw, size_t sh,
                                size_t sw, size_t dh, size_t dw, ptrdiff_t pad_top, ptrdiff_t pad_left, size_t ho,
                                size_t wo, uint8_t pad, int flip_sign, uint8_t* work, uint8_t* out);
/* The two steps of sparrow_qgemm_pack_conv_c4, for packing a band of output rows at a time while
 * the previous band's GEMM has its X in L2: the planes (`work`) once per image, then the columns
 * of output rows [oy0, oy1) as a matrix of (oy1 - oy0) * wo columns (its own x stride), c a
 * multiple of 4 as above. The planes alone also take c not a multiple of 4: ceil(c / 4) groups
 * (sparrow_qgemm_pack_conv_c4_work_bytes counts them), the last one's missing channels holding the
 * pad value, for the direct convolution (which pads the weights with zeros to match; ResNet's
 * 3-channel stem). */
void sparrow_qgemm_pack_conv_c4_planes(const uint8_t* x, size_t c, size_t h, size_t w, size_t kh, size_t kw, size_t sh,
                                       size_t sw, size_t dh, size_t dw, ptrdiff_t pad_top, ptrdiff_t pad_left,
                                       size_t ho, size_t wo, uint8_t pad, int flip_sign, uint8_t* work);
void sparrow_qgemm_pack_conv_c4_rows(const uint8_t* work, size_t c, size_t kh, size_t kw, size_t sh, size_t sw,
                                     size_t dh, size_t dw, size_t ho, size_t wo, size_t oy0, size_t oy1, uint8_t* out);
/* Runs kernel i (packed for its MR) on panels [p0, p1) over all n columns. */
void sparrow_qgemm_run(size_t i, const int8_t* wp, size_t m, size_t k, size_t p0, size_t p1, const uint8_t* xp,
                       size_t n, const sparrow_qgemm_epilogue* e);

/* Direct int8 convolution (qconv/qconv.h): the tap-major planes that
 * sparrow_qgemm_pack_conv_c4_planes writes (`work`) read in place, without the unfolded copy, the
 * weights as the vector operand: per tap and group of 4 channels, an output position's 4 input
 * channels are one word of a plane, multiplied against a panel of MR output channels (ONNX
 * Runtime's indirect NHWC convolution, in form). W is the tap-major weights [m, taps * c]
 * (QGemm.tapMajor's order) packed by sparrow_qgemm_pack_w with mr = sparrow_qconv_mr(i); c is a
 * multiple of 4 (channels padded up to one, with zero weights, for planes of fewer), kh * kw at
 * most SPARROW_QCONV_MAX_TAPS. Computes panels [p0, p1) at output positions [n0, n1) of the
 * ho * wo (row-major), through the GEMM's epilogue (row = output channel, column = output
 * position); same bits as the GEMM on the tap-major im2col. An entry this CPU does not run
 * (sparrow_qconv_runnable) writes nothing. */
#define SPARROW_QCONV_MAX_TAPS 64
size_t sparrow_qconv_count(void);
const char* sparrow_qconv_name(size_t i);
uint32_t sparrow_qconv_mr(size_t i);
int sparrow_qconv_runnable(size_t i);
size_t sparrow_qconv_auto(void);
void sparrow_qconv_run(size_t i, const int8_t* wp, size_t m, size_t c, size_t kh, size_t kw, size_t sh, size_t sw,
                       size_t dh, size_t dw, size_t ho, size_t wo, const uint8_t* work, size_t p0, size_t p1, size_t n0,
                       size_t n1, const sparrow_qgemm_epilogue* e);

/* Sparse int8 (qspmm/qspmm.h): W kept as its nonzero 1x4 blocks along K, on the same packed X.
 * sparrow_qspmm_blocks counts the blocks; sparrow_qspmm_pack_w fills row_ptr (m + 1), group (in
 * ascending order within each row, which the kernels rely on) and word (4 bytes per block) and
 * row_sums. */
size_t sparrow_qspmm_count(void);
const char* sparrow_qspmm_name(size_t i);
int sparrow_qspmm_runnable(size_t i);
size_t sparrow_qspmm_auto(void);
size_t sparrow_qspmm_blocks(const int8_t* w, size_t m, size_t k, ptrdiff_t m_stride, ptrdiff_t k_stride);
void sparrow_qspmm_pack_w(const int8_t* w, size_t m, size_t k, ptrdiff_t m_stride, ptrdiff_t k_stride,
                          uint32_t* row_ptr, uint32_t* group, int8_t* word, int32_t* row_sums);
/* Runs sparse kernel i on rows [r0, r1). */
void sparrow_qspmm_run(size_t i, const uint32_t* row_ptr, const uint32_t* group, const int8_t* word, size_t r0,
                       size_t r1, const uint8_t* xp, size_t n, const sparrow_qgemm_epilogue* e);

/* Quantized element-wise kernels (qelem/qelem.h has the definition, qelem/ukernels.inc the list):
 * QuantizeLinear, DequantizeLinear and the int8 add (DequantizeLinear -> Add -> QuantizeLinear,
 * ONNX Runtime's QLinearAdd) per tensor over n contiguous elements, in the uint8 domain (int8 data:
 * flip 0x80, zero point + 128). Same bits on every ISA and as the unfused float32 graph. */
enum { SPARROW_QELEM_QUANTIZE = 0, SPARROW_QELEM_DEQUANTIZE = 1, SPARROW_QELEM_ADD = 2 };

typedef struct sparrow_qelem_params {
  float a_scale, b_scale, y_scale; /* inputs a, b (dequantize, add) and output y (quantize, add) */
  int32_t a_zero, b_zero, y_zero;  /* zero points in the uint8 domain */
  uint8_t a_flip, b_flip, y_flip;  /* 0x80 for int8 data, else 0 */
  float lo, hi;                    /* add: clamp of the float32 sum (a fused Relu/Clip), else -inf, inf */
} sparrow_qelem_params;

size_t sparrow_qelem_count(void);
const char* sparrow_qelem_name(size_t i);
/* SPARROW_QELEM_* of entry i, or -1. */
int sparrow_qelem_op(size_t i);
int sparrow_qelem_runnable(size_t i);
/* The entry the active ISA chooses for `op`. */
size_t sparrow_qelem_auto(int op);
/* Runs entry i (the op's automatic entry when i is not a runnable entry of that op):
 * quantize: a float x[n] -> y uint8[n]; dequantize: a uint8 x[n] -> y float[n]; add: a, b uint8[n]
 * -> y uint8[n] (b unused otherwise). y may equal a or b only for the add. */
void sparrow_qelem_run(int op, size_t i, size_t n, const void* a, const void* b, const sparrow_qelem_params* p,
                       void* y);

#ifdef __cplusplus
}
#endif
#endif
