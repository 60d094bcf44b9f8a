/* Packing for the int8 GEMM (layouts: qgemm.h). */
#include <string.h>

#include "qgemm.h"

size_t sparrow_qgemm_packed_bytes(size_t m, size_t k, uint32_t mr) {
  const size_t panels = (m + mr - 1) / mr;
  return panels * ((k + 3) / 4) * mr * 4;
}

void sparrow_qgemm_pack_w(const int8_t* w, size_t m, size_t k, ptrdiff_t m_stride, ptrdiff_t k_stride, uint32_t mr,
                          int8_t* out, int32_t* row_sums) {
  const size_t kq = (k + 3) / 4, panels = (m + mr - 1) / mr;
  memset(out, 0, sparrow_qgemm_packed_bytes(m, k, mr));
  for (size_t p = 0; p < panels; p++)
    for (size_t i = 0; i < mr && p * mr + i < m; i++) {
      const size_t row = p * mr + i;
      int32_t sum = 0;
      for (size_t kk = 0; kk < k; kk++) {
        const int8_t v = w[(ptrdiff_t)row * m_stride + (ptrdiff_t)kk * k_stride];
        out[((p * kq + kk / 4) * mr + i) * 4 + kk % 4] = v;
        sum += v;
      }
      row_sums[row] = sum;
    }
}

size_t sparrow_qgemm_packed_x_bytes(size_t k, size_t n) { return (k + 3) / 4 * 4 * n; }

void sparrow_qgemm_pack_x(const uint8_t* x, size_t k, size_t n, ptrdiff_t k_stride, ptrdiff_t n_stride, int flip_sign,
                          uint8_t* out) {
  const uint8_t flip = flip_sign ? 0x80 : 0;
  const size_t kq = (k + 3) / 4;
  for (size_t q = 0; q < kq; q++) {
    uint8_t* o = out + q * n * 4;
    const size_t k0 = q * 4, rows = k - k0 < 4 ? k - k0 : 4;
    if (n_stride == 1) {
      /* Rows of X contiguous (convolutions): interleave 4 rows. */
      const uint8_t* r[4];
      for (size_t j = 0; j < 4; j++) r[j] = j < rows ? x + (ptrdiff_t)(k0 + j) * k_stride : NULL;
      for (size_t c = 0; c < n; c++)
        for (size_t j = 0; j < 4; j++) o[c * 4 + j] = r[j] != NULL ? (uint8_t)(r[j][c] ^ flip) : 0;
    } else {
      for (size_t c = 0; c < n; c++)
        for (size_t j = 0; j < 4; j++)
          o[c * 4 + j] = j < rows ? (uint8_t)(x[(ptrdiff_t)(k0 + j) * k_stride + (ptrdiff_t)c * n_stride] ^ flip) : 0;
    }
  }
}

void sparrow_qgemm_pack_conv(const uint8_t* x, size_t c, size_t h, size_t w, size_t kh, size_t kw, size_t sh, size_t sw,
                             size_t dh, size_t dw, ptrdiff_t pad_top, ptrdiff_t pad_left, size_t ho, size_t wo,
                             uint8_t pad, int flip_sign, uint8_t* out) {
  const uint8_t flip = flip_sign ? 0x80 : 0, padv = (uint8_t)(pad ^ flip);
  const size_t k = c * kh * kw, n = ho * wo, kq = (k + 3) / 4;
  if (k % 4 != 0) memset(out + (kq - 1) * n * 4, 0, n * 4);
  for (size_t kk = 0; kk < k; kk++) {
    const size_t ic = kk / (kh * kw), ky = kk / kw % kh, kx = kk % kw;
    uint8_t* o = out + (kk / 4) * n * 4 + kk % 4;
    const uint8_t* plane = x + ic * h * w;
    for (size_t oy = 0; oy < ho; oy++) {
      const ptrdiff_t iy = (ptrdiff_t)(oy * sh + ky * dh) - pad_top;
      uint8_t* orow = o + oy * wo * 4;
      if (iy < 0 || iy >= (ptrdiff_t)h) {
        for (size_t ox = 0; ox < wo; ox++) orow[ox * 4] = padv;
        continue;
      }
      const uint8_t* row = plane + (size_t)iy * w;
      for (size_t ox = 0; ox < wo; ox++) {
        const ptrdiff_t ix = (ptrdiff_t)(ox * sw + kx * dw) - pad_left;
        orow[ox * 4] = ix < 0 || ix >= (ptrdiff_t)w ? padv : (uint8_t)(row[ix] ^ flip);
      }
    }
  }
}
