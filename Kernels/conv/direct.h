/* Internal to the direct convolution (direct.c: creation, lists, padding, the sparse and
 * channel-major dense modes, runs; pixel.c: the pixel-major dense mode's task split and rows). */
#ifndef SPARROW_CONV_DIRECT_H
#define SPARROW_CONV_DIRECT_H
#include <stddef.h>
#include <stdint.h>

#include "dconv/dconv.h"
#include "dwconv/dwconv.h"
#include "sparrow_kernels.h"
#include "window.h"

struct sparrow_direct_conv {
  sparrow_dwconv_shape s; /* channels = input channels, multiplier 1 */
  size_t cout;
  extents e;
  size_t plane;    /* floats per padded plane, a multiple of 16 (64-byte aligned planes) */
  size_t* row_ptr; /* cout + 1 */
  size_t* offsets; /* per nonzero: c * plane + tap offset */
  float* values;
  uint32_t* chan;               /* per nonzero: its input channel c (active-channel lists) */
  sparrow_dwconv_ukernel_fn fn; /* the row kernel, bound when created */
  /* Dense mode (sparrow_direct_conv_create_dense; row_ptr, offsets, values and chan are NULL):
   * the whole weight in panels of SPARROW_DCONV_MR output channels (dconv/dconv.h), each k's
   * input offset, and the dense microkernel bound when created. */
  int dense;
  size_t k, panels, dense_nnz;
  float* wp;    /* panels * k * mr */
  size_t* koff; /* k */
  sparrow_dconv_ukernel_fn dfn;
  /* Pixel mode (sparrow_direct_conv_create_pixel; dense is 1 too): panels of
   * SPARROW_PCONV_NR output channels, the same K-major packing, and the pixel-major kernel. */
  int pixel;
  size_t mr; /* output channels per panel: SPARROW_DCONV_MR, or SPARROW_PCONV_NR in pixel mode */
  sparrow_pconv_ukernel_fn pfn;
  /* Pixel mode, compacted (panels sharing zero columns, e.g. N:M pruned with the pattern shared
   * by the panel's rows, `prune --share-rows 16`): panel q keeps only its columns with a nonzero,
   * entries [pstart[q], pstart[q + 1]) of wp (mr floats each) and of pkoff (their input
   * offsets), so its kernel call skips the zero columns' FMAs. NULL: every panel has all k. */
  size_t* pstart; /* panels + 1 */
  size_t* pkoff;
  /* Pixel mode, a 1 x 1 kernel without padding (a strided projection): the kernels read the
   * input itself (koff[c] = c * h * w, pixel (oy, ox) at oy * stride_h * w + ox * stride_w of
   * its image), so nothing is padded or split into phases. */
  int raw;
};

/* Dense mode with an input list: the weight panels and input offsets of the active channels
 * only (k = active channels * taps), in the workspace after the planes. */
typedef struct {
  float* wp;
  size_t* koff;
  size_t* pstart; /* compacted pixel mode: the active columns' panel starts (panels + 1) */
  uint8_t* mask;  /* compacted pixel mode: 1 per active input channel */
} sparrow_direct_dense_active;

/* Bytes of one image's padded planes in the workspace (with the kernels' read slack). */
size_t sparrow_direct_planes_bytes(const sparrow_direct_conv* d);
/* With an input list: the active copy after the planes (valid after prepare). */
sparrow_direct_dense_active sparrow_direct_dense_active_at(const sparrow_direct_conv* d, void* workspace);
/* 1 when panel q (of mr rows) holds an active output row (no list: all do). */
int sparrow_direct_panel_active(const sparrow_direct_conv_lists* l, size_t q, size_t mr);

/* The fused residual over n outputs of one channel (sparrow_direct_conv_set_residual). */
static inline void sparrow_direct_residual(float* restrict y, const float* restrict r, size_t n, int relu) {
  if (relu) {
    for (size_t i = 0; i < n; i++) {
      const float v = y[i] + r[i];
      y[i] = 0.0f >= v ? 0.0f : v;
    }
  } else {
    for (size_t i = 0; i < n; i++) y[i] += r[i];
  }
}

/* Pixel mode (pixel.c): the plan's task split (after pfn, pfn2 and pfn4 are bound), and task t. */
void sparrow_direct_pixel_split(sparrow_direct_conv_plan* p, size_t nt);
void sparrow_direct_pixel_rows(const sparrow_direct_conv_plan* p, size_t t);

#endif
