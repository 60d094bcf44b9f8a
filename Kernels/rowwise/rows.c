/* The row-wise driver: a task runs a contiguous range of rows through one row kernel. */
#include "../dispatch/dispatch.h"
#include "rowwise.h"

size_t sparrow_rows_tasks(const sparrow_rows_call* c) {
  if (c->rows == 0) return 0;
  const size_t per = c->rows_per_task > 0 ? c->rows_per_task : c->rows;
  return (c->rows + per - 1) / per;
}

void sparrow_rows_task(void* context, size_t task) {
  const sparrow_rows_call* c = (const sparrow_rows_call*)context;
  const size_t per = c->rows_per_task > 0 ? c->rows_per_task : c->rows;
  const size_t r0 = task * per, r1 = r0 + per < c->rows ? r0 + per : c->rows;
  const sparrow_row_generic_fn fn = sparrow_row_select(c->op, c->ukernel);
  const char* x = (const char*)c->x;
  char* y = (char*)c->y;
  switch (c->op) {
    case SPARROW_ROW_SOFTMAX: {
      const sparrow_softmax_ukernel_fn k = (sparrow_softmax_ukernel_fn)fn;
      for (size_t r = r0; r < r1; r++) {
        const float* mask = c->mask == NULL ? NULL : (c->mask_rows != NULL ? c->mask + c->mask_rows[r] : c->mask);
        k(c->n, (const float*)(x + r * c->x_stride), c->alpha, mask, (float*)(y + r * c->y_stride));
      }
      break;
    }
    case SPARROW_ROW_GELU_ERF:
    case SPARROW_ROW_GELU_TANH: {
      const sparrow_gelu_ukernel_fn k = (sparrow_gelu_ukernel_fn)fn;
      for (size_t r = r0; r < r1; r++) k(c->n, (const float*)(x + r * c->x_stride), (float*)(y + r * c->y_stride));
      break;
    }
    case SPARROW_ROW_LAYERNORM: {
      const sparrow_layernorm_ukernel_fn k = (sparrow_layernorm_ukernel_fn)fn;
      for (size_t r = r0; r < r1; r++) {
        float stats[2];
        k(c->n, (const float*)(x + r * c->x_stride), c->scale, c->bias, c->epsilon, (float*)(y + r * c->y_stride),
          stats);
        if (c->mean != NULL) c->mean[r] = stats[0];
        if (c->inv_std != NULL) c->inv_std[r] = stats[1];
      }
      break;
    }
  }
}
