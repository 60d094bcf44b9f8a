#ifndef SPARROW_ERROR_H
#define SPARROW_ERROR_H
#include "sparrow_kernels.h"

/* Records a message for sparrow_last_error and returns `status`. */
sparrow_status sparrow_fail(sparrow_status status, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void sparrow_clear_error(void);

/* Limits that keep every index and byte count inside 32-bit/size_t arithmetic. */
#define SPARROW_MAX_DIM ((size_t)1 << 30)
#define SPARROW_MAX_NNZ ((size_t)0xFFFFFFFFu)
#define SPARROW_MAX_BLOCK 16

#endif
