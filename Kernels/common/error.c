/* Thread-local error detail behind sparrow_last_error. */
#include <stdarg.h>
#include <stdio.h>

#include "error.h"

static _Thread_local char last_error[256];

const char* sparrow_last_error(void) { return last_error; }

sparrow_status sparrow_fail(sparrow_status status, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
  return status;
}

void sparrow_clear_error(void) { last_error[0] = '\0'; }
