/* Gathered GEMM, portable C (gate.h, kind ROWS): up to 4 listed rows x one 16-column block,
 * the weights read in place from each row's runs of kept columns. */
#include "gate.h"

void sparrow_gatherk_rows_f32_4x16__scalar(size_t rows, const float* const* w, size_t runs, const uint32_t* run_k,
                                           const uint32_t* run_len, const float* xp, size_t cols, float* const* y,
                                           const float* bias, const float* scale, float lo, float hi, int first,
                                           int last) {
  enum { NR = SPARROW_GATHER_NR };
  for (size_t i = 0; i < rows; i++) {
    float acc[NR] = {0};
    const float* xr = xp;
    for (size_t q = 0; q < runs; q++) {
      const float* wr = w[i] + run_k[q];
      for (size_t t = 0; t < run_len[q]; t++, xr += NR) {
        const float v = wr[t];
        for (size_t j = 0; j < NR; j++) acc[j] += v * xr[j];
      }
    }
    float* yr = y[i];
    for (size_t j = 0; j < cols; j++) {
      float v = first ? acc[j] : yr[j] + acc[j];
      if (last) {
        v += bias != NULL ? bias[i] : 0.0f;
        v = v < lo ? lo : (v > hi ? hi : v);
        if (scale != NULL) v *= scale[i];
      }
      yr[j] = v;
    }
  }
}
