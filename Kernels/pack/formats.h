/*
 * Internal layouts of the packed formats. Shared by the packers, the microkernels and the
 * qemu test driver; never seen by Swift (which holds an opaque sparrow_matrix*).
 *
 * Stack: the AVX2 kernels copy a K-block of the X panel into an aligned stack buffer (up to
 * 64 KiB, plus 4 KiB of row cursors), so callers' threads need at least ~128 KiB of stack
 * (Linux pthreads, libdispatch and libomp workers all default to far more).
 *
 * Read-past-end rules: no kernel reads X past column n-1 of its tile, past row K-1, or W past
 * its arrays; the packer pads nothing that kernels rely on. Tails (n not a multiple of the
 * vector width) use masked or scalar code.
 */
#ifndef SPARROW_FORMATS_H
#define SPARROW_FORMATS_H

#include "sparrow_kernels.h"
#include "../common/common.h"

/* CSR: row r holds values[row_ptr[r] .. row_ptr[r+1]) at columns col16/col32[...], columns
 * sorted ascending. col16 is used when K <= 65536 (index_bits 16), else col32. */
typedef struct sparrow_csr {
  uint32_t* row_ptr;   /* m + 1 */
  uint16_t* col16;     /* nnz, or NULL */
  uint32_t* col32;     /* nnz, or NULL */
  float* values;       /* nnz */
} sparrow_csr;

/* N:M: for every row, `groups` groups of n (value, index) pairs, row-major:
 * values[(r * groups + g) * n + j], idx[...] the position 0..m-1 inside the group, increasing.
 * Padding pairs (a group with fewer than n nonzeros) hold value 0 at an unused position; in a
 * partial last group (stride 1, K % m != 0) a padding pair may point past K, so kernels must
 * never read X for a zero-valued pair past K (skip zero pairs, or read a zeroed copy).
 * Group g covers, with S = group_stride:
 *   S == 1:  columns g*m + idx            (last group may be partial: idx < k - g*m)
 *   S  > 1:  cg = g / S, s = g % S:  columns (cg*m + idx) * S + s   (requires (k/S) % m == 0) */
typedef struct sparrow_nm {
  uint32_t n, m, stride, groups;
  float* values;
  uint8_t* idx;
  /* Shared pattern (built by the packer and importer when it holds, else shared_rows = 0 and
   * both arrays NULL): rows in blocks of R = shared_rows (SPARROW_NM_SHARED_ROWS) use the same
   * n positions in every group (the union of the block's nonzero positions fits n), so a kernel
   * can load the n X rows of a group once for R output rows, as a dense kernel loads one X row
   * for MR rows. Block b (rows b*R .. b*R+R-1, rows past M zero), group g, pair q:
   *   shared_idx[(b * groups + g) * n + q]                     position, increasing in q
   *   shared_values[((b * groups + g) * n + q) * R + i]          W[b*R + i][column of (g, idx)]
   * Padding positions follow the rule above (free positions inside K first; past K only in a
   * partial last group, with value 0 in every row). */
  uint32_t shared_rows;
  float* shared_values;
  uint8_t* shared_idx;
} sparrow_nm;

/* Rows per block of a shared N:M pattern (the register block of the kernels that use it). */
#define SPARROW_NM_SHARED_ROWS 8
/* Shared-pattern kernels copy X in slices of whole group spans of at most this many rows; the
 * dispatcher binds them only to matrices with m * stride <= it. */
#define SPARROW_NM_SHARED_SPAN_MAX 256

/* The AVX2 N:M kernel copies X blocks of whole group spans (m * stride rows of 64 floats) into
 * a stack buffer of this many floats; matrices whose span does not fit go to the scalar kernel
 * (the dispatcher chooses it). */
#define SPARROW_NM_AVX2_BUF 16384
/* The AVX-512 N:M kernel's buffer: group spans of m * stride rows of up to 128 floats. */
#define SPARROW_NM_AVX512_BUF 16384

/* BSR: block rows of r output rows (mb = ceil(M/r)), block columns of c K-columns.
 * Block row br holds blocks block_row_ptr[br] .. block_row_ptr[br+1], block b at block column
 * block_col[b] (K offset block_col[b]*c), values[b*r*c + i*c + j] = W[br*r + i][block_col[b]*c + j].
 * Rows past M and columns past K inside edge blocks hold 0 and are never read/written. */
typedef struct sparrow_bsr {
  uint32_t r, c, mb, kb;
  uint32_t nblocks;
  uint32_t* block_row_ptr;  /* mb + 1 */
  uint32_t* block_col;      /* nblocks */
  float* values;            /* nblocks * r * c */
} sparrow_bsr;

/* DENSE and CHANNEL: a compact dense row-major matrix (kept_rows x kept_cols) with maps to the
 * original rows/columns. DENSE keeps everything (maps are identity and NULL). */
typedef struct sparrow_dense {
  size_t kept_rows, kept_cols;
  uint32_t* row_map;  /* kept_rows, increasing; NULL = identity */
  uint32_t* col_map;  /* kept_cols, increasing; NULL = identity */
  float* w;           /* kept_rows * kept_cols */
} sparrow_dense;

/* GEMM ("packed" dense): W in panels of mr rows, K-major inside a panel, rows past M zero,
 * SPARROW_GEMM_PAD zero floats after the last panel (layout and read-past rule:
 * dense/gemm/gemm.h). mr is the bound kernel's block_rows. */
typedef struct sparrow_gemm {
  uint32_t mr;
  size_t panels;  /* ceil(M / mr) */
  float* w;       /* panels * mr * K + SPARROW_GEMM_PAD */
} sparrow_gemm;

struct sparrow_matrix {
  sparrow_format format;
  size_t m, k, nnz, packed_bytes;
  sparrow_pack_params params;
  /* Bound once, when the matrix is packed or imported (Kernels/dispatch): the kernel entry that
   * runs it, and the one that runs its compacted copy under an input-channel list (N:M compacts
   * to CSR: the CSR kernel of the same ISA). sparrow_matrix_force_kernel rebinds both. */
  const struct sparrow_spmm_kernel* kernel;
  const struct sparrow_spmm_kernel* compact_kernel;
  union {
    sparrow_csr csr;
    sparrow_nm nm;
    sparrow_bsr bsr;
    sparrow_dense dense;
    sparrow_gemm gemm;
  } u;
};

/* What a microkernel gets: one tile = a range of row units x a range of columns. */
typedef struct sparrow_ukernel_args {
  const float* x;       /* X column n0 (row 0) */
  size_t x_stride;      /* bytes */
  float* y;             /* Y column n0 (row 0) */
  size_t y_stride;      /* bytes */
  size_t n;             /* columns in this tile, >= 1 */
  const float* bias;    /* M floats or NULL */
  float lo, hi;         /* clamp */
  /* K bytes, 1 = column active; NULL = all active. With a mask the driver hands CSR kernels a
   * compacted matrix (Kernels/parallel/compact.c) without any nonzero in an inactive column,
   * and N:M calls run as such a CSR: those kernels need the mask only to leave inactive X rows
   * unread when they copy X panels. BSR blocks may straddle an inactive column: BSR kernels
   * must skip (or read as zero) every X row the mask clears. */
  const uint8_t* k_mask;
  /* Non-NULL (kernels registered with WINDOW 1 only): X is this window over the image at `x`
   * (sparrow_spmm_call.x_window) and the tile starts at its column col0; x_stride unused. */
  const sparrow_dwconv_shape* win;
  size_t col0;
} sparrow_ukernel_args;

/* Computes row units units[u0..u1) (units == NULL: units u0..u1 themselves). A unit is a row
 * (CSR, NM) or a block row (BSR). Writes every row of each unit (BSR: rows < M only). */
typedef void (*sparrow_spmm_ukernel_fn)(const sparrow_matrix* w, const uint32_t* units,
                                        size_t u0, size_t u1, const sparrow_ukernel_args* a);

#endif
