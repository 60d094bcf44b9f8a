/* The importers and packers reject malformed data with the documented status and leave *out
 * NULL (part of the kernel test driver; see neon_test.c). */
#include <stdio.h>

#include "neon_test.h"
#include "sparrow_kernels.h"

static void expect_status(const char* what, sparrow_status got, sparrow_status want, sparrow_matrix* m) {
  if (got != want) {
    snprintf(g_case, sizeof g_case, "importer rejection: %s", what);
    fail("status %d, expected %d (%s)", (int)got, (int)want, sparrow_last_error());
  } else if (got != SPARROW_OK && m != NULL) {
    snprintf(g_case, sizeof g_case, "importer rejection: %s", what);
    fail("failed but left a matrix in *out");
  } else {
    g_passed++;
  }
  sparrow_matrix_free(got == SPARROW_OK ? m : NULL);
}

void test_rejections(void) {
  g_case_index = -1;
  sparrow_matrix* m;
  const float v4[4] = {1, 2, 3, 4};
  { /* CSR 3 x 4 */
    const int64_t rp_ok[4] = {0, 1, 3, 4}, col_ok[4] = {0, 3, 1, 2};
    m = NULL; expect_status("csr valid", sparrow_import_csr(3, 4, rp_ok, col_ok, v4, 4, &m), SPARROW_OK, m);
    const int64_t rp_nonmono[4] = {0, 3, 1, 4};
    m = NULL; expect_status("csr non-monotone row pointers",
                            sparrow_import_csr(3, 4, rp_nonmono, col_ok, v4, 4, &m), SPARROW_ERR_MALFORMED, m);
    const int64_t rp_start[4] = {1, 1, 3, 4};
    m = NULL; expect_status("csr row_ptr[0] != 0",
                            sparrow_import_csr(3, 4, rp_start, col_ok, v4, 4, &m), SPARROW_ERR_MALFORMED, m);
    const int64_t rp_end[4] = {0, 1, 3, 3};
    m = NULL; expect_status("csr row_ptr[m] != nnz",
                            sparrow_import_csr(3, 4, rp_end, col_ok, v4, 4, &m), SPARROW_ERR_MALFORMED, m);
    const int64_t col_big[4] = {0, 4, 1, 2};
    m = NULL; expect_status("csr column == K", sparrow_import_csr(3, 4, rp_ok, col_big, v4, 4, &m),
                            SPARROW_ERR_MALFORMED, m);
    const int64_t col_neg[4] = {0, -1, 1, 2};
    m = NULL; expect_status("csr negative column", sparrow_import_csr(3, 4, rp_ok, col_neg, v4, 4, &m),
                            SPARROW_ERR_MALFORMED, m);
    const int64_t col_dup[4] = {0, 1, 1, 2};
    m = NULL; expect_status("csr duplicate column", sparrow_import_csr(3, 4, rp_ok, col_dup, v4, 4, &m),
                            SPARROW_ERR_MALFORMED, m);
  }
  { /* N:M 2:4, 2 x 8 (2 groups per row) */
    const sparrow_pack_params p = {.nm_n = 2, .nm_m = 4, .nm_group_stride = 1};
    const float val[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const uint8_t ok[8] = {0, 1, 2, 3, 1, 3, 0, 2};
    m = NULL; expect_status("nm valid", sparrow_import_nm(2, 8, &p, val, ok, &m), SPARROW_OK, m);
    const uint8_t big[8] = {0, 4, 2, 3, 1, 3, 0, 2};
    m = NULL; expect_status("nm index == m", sparrow_import_nm(2, 8, &p, val, big, &m), SPARROW_ERR_MALFORMED, m);
    const uint8_t huge[8] = {0, 1, 2, 3, 1, 3, 0, 200};
    m = NULL; expect_status("nm index 200", sparrow_import_nm(2, 8, &p, val, huge, &m), SPARROW_ERR_MALFORMED, m);
    const uint8_t order[8] = {1, 0, 2, 3, 1, 3, 0, 2};
    m = NULL; expect_status("nm indices not increasing", sparrow_import_nm(2, 8, &p, val, order, &m),
                            SPARROW_ERR_MALFORMED, m);
    /* K = 6: the second group is partial (columns 4, 5); index 2 points at column 6 >= K. */
    const uint8_t past[8] = {0, 1, 0, 2, 1, 3, 0, 1};
    m = NULL; expect_status("nm index past K", sparrow_import_nm(2, 6, &p, val, past, &m), SPARROW_ERR_MALFORMED, m);
    const sparrow_pack_params bad = {.nm_n = 3, .nm_m = 2, .nm_group_stride = 1};
    m = NULL; expect_status("nm n > m", sparrow_import_nm(2, 8, &bad, val, ok, &m), SPARROW_ERR_INVALID_ARGUMENT, m);
    const sparrow_pack_params s9 = {.nm_n = 2, .nm_m = 4, .nm_group_stride = 9};
    m = NULL; expect_status("nm stride 9, K not channels*9 with channels % 4 == 0",
                            sparrow_import_nm(2, 27, &s9, val, ok, &m), SPARROW_ERR_PATTERN, m);
    /* Packing a dense matrix that is not 2:4. */
    const float dense[8] = {1, 1, 1, 0, 0, 0, 0, 0};
    m = NULL; expect_status("nm pack of a non-conforming matrix",
                            sparrow_pack(dense, 1, 8, SPARROW_FORMAT_NM, &p, &m), SPARROW_ERR_PATTERN, m);
  }
  { /* BSR 4x1 blocks, M = 5 (2 block rows), K = 3 */
    const int64_t rp[3] = {0, 2, 3}, bc_ok[3] = {0, 2, 1};
    float val[12];
    for (int i = 0; i < 12; i++) val[i] = (float)(i + 1);
    m = NULL; expect_status("bsr valid", sparrow_import_bsr(5, 3, 4, 1, rp, bc_ok, val, 3, &m), SPARROW_OK, m);
    const int64_t bc_big[3] = {0, 3, 1};
    m = NULL; expect_status("bsr block column == kb", sparrow_import_bsr(5, 3, 4, 1, rp, bc_big, val, 3, &m),
                            SPARROW_ERR_MALFORMED, m);
    const int64_t bc_neg[3] = {0, 2, -1};
    m = NULL; expect_status("bsr negative block column", sparrow_import_bsr(5, 3, 4, 1, rp, bc_neg, val, 3, &m),
                            SPARROW_ERR_MALFORMED, m);
    const int64_t bc_order[3] = {2, 0, 1};
    m = NULL; expect_status("bsr block columns not increasing",
                            sparrow_import_bsr(5, 3, 4, 1, rp, bc_order, val, 3, &m), SPARROW_ERR_MALFORMED, m);
    const int64_t rp_bad[3] = {0, 3, 2};
    m = NULL; expect_status("bsr non-monotone block row pointers",
                            sparrow_import_bsr(5, 3, 4, 1, rp_bad, bc_ok, val, 3, &m), SPARROW_ERR_MALFORMED, m);
    m = NULL; expect_status("bsr block 17x1", sparrow_import_bsr(5, 3, 17, 1, rp, bc_ok, val, 3, &m),
                            SPARROW_ERR_INVALID_ARGUMENT, m);
  }
}

