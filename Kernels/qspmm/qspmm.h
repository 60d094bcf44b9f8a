/* Sparse int8 GEMM (public contract: include/sparrow_qgemm.h): W stored as its nonzero 1x4
 * blocks along K, on the same packed X as the dense int8 kernels (qgemm/qgemm.h: the 4 k of a
 * group side by side per column), so a block is one 32-bit word that vpdpbusd / vpmaddwd
 * multiplies by a group of X at once, and a zero block is skipped whole. Pruning then quantizing
 * keeps zeros exactly zero (symmetric weights), so the blocks of a pruned layer are the 1x4 groups
 * with any nonzero: at 90% unstructured sparsity about 1 - 0.9^4 = 34% of the groups.
 *
 * Layout (sparrow_qspmm_pack_w): row r's blocks are [row_ptr[r], row_ptr[r + 1]); block b covers
 * k = 4 * group[b] ... + 3 with weights word[b] (4 int8, 0 past K), groups ascending within a row
 * (kernels may rely on it: the AVX-512 one takes a row's last group as its largest). Rows are
 * computed one at a time (their block lists differ); columns as in the dense kernels. */
#ifndef SPARROW_QSPMM_INTERNAL_H
#define SPARROW_QSPMM_INTERNAL_H
#include "../qgemm/qgemm.h"

typedef void (*sparrow_qspmm_fn)(const uint32_t* row_ptr, const uint32_t* group, const int8_t* word, size_t r0,
                                 size_t r1, const uint8_t* xp, size_t n, const sparrow_qgemm_epilogue* e);
#endif
