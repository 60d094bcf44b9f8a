/* Packing for the int8 GEMM (layouts: qgemm.h). */
#include <string.h>

#include "interleave.h"
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

void sparrow_qgemm_pack_w16(const int8_t* w, size_t m, size_t k, ptrdiff_t m_stride, ptrdiff_t k_stride, uint32_t mr,
                            int16_t* out, int32_t* row_sums) {
  const size_t kq = (k + 3) / 4, panels = (m + mr - 1) / mr;
  memset(out, 0, sparrow_qgemm_packed_bytes(m, k, mr) * sizeof(int16_t));
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

size_t sparrow_qgemm_x_stride(size_t n) { return sparrow_qgemm_ldx(n); }

size_t sparrow_qgemm_packed_x_bytes(size_t k, size_t n) { return (k + 3) / 4 * 4 * sparrow_qgemm_ldx(n); }

size_t sparrow_interleave_u8_4x1__scalar(uint8_t* out, const uint8_t* const r[4], size_t n, size_t step, uint8_t flip) {
  (void)out, (void)r, (void)n, (void)step, (void)flip;
  return 0;
}

/* out[4 i + j] = r[j][step * i] ^ flip for i < n: the dispatcher's SIMD step, then the rest. The
 * SIMD step does whole blocks of 16 columns (at stride 2 it stops a block early, never reading past
 * the last column); the columns left run as one more block that overlaps the last (the same bytes
 * written twice): rows of 17-63 columns, such as the stride-2 phases of ResNet's downsampling
 * layers, had run up to 16 columns each in the byte loop below. */
static void interleave4(sparrow_interleave4_fn simd, uint8_t* out, const uint8_t* const r[4], size_t n, size_t step,
                        uint8_t flip) {
  size_t i = simd(out, r, n, step, flip);
  if (i > 0 && i < n && n >= 17 && (step == 1 || (step == 2 && i < n - 1))) {
    /* Stride 1: columns n - 16 .. n - 1; stride 2: n - 17 .. n - 2 (its 32-byte read ends at the
     * last column), then the last column below. */
    const size_t i0 = step == 1 ? n - 16 : n - 17;
    const uint8_t* t[4] = {r[0] + step * i0, r[1] + step * i0, r[2] + step * i0, r[3] + step * i0};
    if (simd(out + 4 * i0, t, step == 1 ? 16 : 17, step, flip) == 16) i = i0 + 16;
  }
  for (; i < n; i++)
    for (size_t j = 0; j < 4; j++) out[4 * i + j] = (uint8_t)(r[j][step * i] ^ flip);
}

void sparrow_qgemm_pack_x(const uint8_t* x, size_t k, size_t n, ptrdiff_t k_stride, ptrdiff_t n_stride, int flip_sign,
                          uint8_t* out) {
  const uint8_t flip = flip_sign ? 0x80 : 0;
  const size_t kq = (k + 3) / 4, ldx = sparrow_qgemm_ldx(n);
  const sparrow_interleave4_fn simd = sparrow_dispatch_interleave4();
  for (size_t q = 0; q < kq; q++) {
    uint8_t* o = out + q * ldx * 4;
    __builtin_memset(o + n * 4, 0, (ldx - n) * 4);
    const size_t k0 = q * 4, rows = k - k0 < 4 ? k - k0 : 4;
    if (n_stride == 1 && rows == 4) {
      /* Rows of X contiguous (convolutions): interleave 4 rows. */
      const uint8_t* r[4];
      for (size_t j = 0; j < 4; j++) r[j] = x + (ptrdiff_t)(k0 + j) * k_stride;
      interleave4(simd, o, r, n, 1, flip);
    } else {
      for (size_t c = 0; c < n; c++)
        for (size_t j = 0; j < 4; j++)
          o[c * 4 + j] = j < rows ? (uint8_t)(x[(ptrdiff_t)(k0 + j) * k_stride + (ptrdiff_t)c * n_stride] ^ flip) : 0;
    }
  }
}

/* The output columns ox of one kernel tap that read inside the row: ix = ox * sw + off in
 * [0, w) for ox in [*lo, *hi). */
static void tap_columns(ptrdiff_t off, size_t sw, size_t w, size_t wo, size_t* lo, size_t* hi) {
  const ptrdiff_t s = (ptrdiff_t)sw;
  ptrdiff_t a = off >= 0 ? 0 : (-off + s - 1) / s;
  ptrdiff_t b = (ptrdiff_t)w - 1 - off < 0 ? 0 : ((ptrdiff_t)w - 1 - off) / s + 1;
  if (b > (ptrdiff_t)wo) b = (ptrdiff_t)wo;
  if (a > b) a = b;
  *lo = (size_t)a;
  *hi = (size_t)b;
}

void sparrow_qgemm_pack_conv(const uint8_t* x, size_t c, size_t h, size_t w, size_t kh, size_t kw, size_t sh, size_t sw,
                             size_t dh, size_t dw, ptrdiff_t pad_top, ptrdiff_t pad_left, size_t ho, size_t wo,
                             uint8_t pad, int flip_sign, uint8_t* out) {
  const uint8_t flip = flip_sign ? 0x80 : 0, padv = (uint8_t)(pad ^ flip);
  const size_t k = c * kh * kw, n = ho * wo, kq = (k + 3) / 4, ldx = sparrow_qgemm_ldx(n);
  const sparrow_interleave4_fn simd = sparrow_dispatch_interleave4();
  for (size_t q = 0; q < kq; q++) {
    __builtin_memset(out + (q * ldx + n) * 4, 0, (ldx - n) * 4);
    /* The 4 rows of this group: plane, vertical and horizontal offsets, valid columns. */
    const uint8_t* plane[4];
    ptrdiff_t yoff[4], xoff[4];
    size_t lo[4], hi[4];
    for (size_t j = 0; j < 4; j++) {
      const size_t kk = q * 4 + j;
      plane[j] = NULL;
      yoff[j] = xoff[j] = 0;
      lo[j] = hi[j] = 0;
      if (kk >= k) continue; /* past K: zeros */
      const size_t ic = kk / (kh * kw), ky = kk / kw % kh, kx = kk % kw;
      plane[j] = x + ic * h * w;
      yoff[j] = (ptrdiff_t)(ky * dh) - pad_top;
      xoff[j] = (ptrdiff_t)(kx * dw) - pad_left;
      tap_columns(xoff[j], sw, w, wo, &lo[j], &hi[j]);
    }
    for (size_t oy = 0; oy < ho; oy++) {
      uint8_t* orow = out + (q * ldx + oy * wo) * 4;
      const uint8_t* src[4];
      size_t a = 0, b = wo; /* columns every row reads inside x */
      for (size_t j = 0; j < 4; j++) {
        const ptrdiff_t iy = (ptrdiff_t)(oy * sh) + yoff[j];
        src[j] = plane[j] != NULL && iy >= 0 && iy < (ptrdiff_t)h ? plane[j] + (size_t)iy * w : NULL;
        if (src[j] == NULL) {
          a = b = 0;
        } else {
          a = lo[j] > a ? lo[j] : a;
          b = hi[j] < b ? hi[j] : b;
        }
      }
      if (a < b) {
        const uint8_t* r[4];
        for (size_t j = 0; j < 4; j++) r[j] = src[j] + (ptrdiff_t)(a * sw) + xoff[j];
        interleave4(simd, orow + a * 4, r, b - a, sw, flip);
      } else {
        a = b = 0;
      }
      /* The columns outside [a, b): byte by byte. */
      for (size_t j = 0; j < 4; j++) {
        const uint8_t fill = plane[j] == NULL ? 0 : padv;
        for (size_t ox = a > 0 ? 0 : b; ox < wo; ox = ox + 1 == a ? b : ox + 1) {
          uint8_t v = fill;
          if (src[j] != NULL && ox >= lo[j] && ox < hi[j]) v = (uint8_t)(src[j][(ptrdiff_t)(ox * sw) + xoff[j]] ^ flip);
          orow[ox * 4 + j] = v;
        }
      }
    }
  }
}

/* ---- the tap-major im2col (sparrow_qgemm_pack_conv_c4) ------------------------------------------ */

size_t sparrow_qgemm_pack_conv_c4_work_bytes(size_t c, size_t kh, size_t kw, size_t sh, size_t sw, size_t dh, size_t dw,
                                             size_t ho, size_t wo) {
  if (ho == 0 || wo == 0 || c == 0) return 0;
  size_t hp, wq;
  sparrow_qgemm_c4_extents(kh, kw, sh, sw, dh, dw, ho, wo, &hp, &wq);
  return (c + 3) / 4 * hp * sw * wq * 4;
}

void sparrow_qgemm_pack_conv_c4_planes(const uint8_t* x, size_t c, size_t h, size_t w, size_t kh, size_t kw, size_t sh,
                                       size_t sw, size_t dh, size_t dw, ptrdiff_t pad_top, ptrdiff_t pad_left,
                                       size_t ho, size_t wo, uint8_t pad, int flip_sign, uint8_t* work) {
  const size_t cq = (c + 3) / 4;
  if (ho == 0 || wo == 0 || cq == 0) return;
  const uint8_t flip = flip_sign ? 0x80 : 0, padv = (uint8_t)(pad ^ flip);
  const sparrow_interleave4_fn simd = sparrow_dispatch_interleave4();
  size_t hp, wq;
  sparrow_qgemm_c4_extents(kh, kw, sh, sw, dh, dw, ho, wo, &hp, &wq);
  /* The window of each group of 4 channels, padded, the 4 channels of a pixel in one word, each row
   * split into its sw column phases: word (g, r, ph, i) holds padded column i * sw + ph. */
  for (size_t g = 0; g < cq; g++)
    for (size_t r = 0; r < hp; r++) {
      uint8_t* row = work + (g * hp + r) * sw * wq * 4;
      const ptrdiff_t iy = (ptrdiff_t)r - pad_top;
      if (iy < 0 || iy >= (ptrdiff_t)h) {
        __builtin_memset(row, padv, sw * wq * 4);
        continue;
      }
      for (size_t ph = 0; ph < sw; ph++) {
        uint8_t* dst = row + ph * wq * 4;
        /* Words i with input column ix = i * sw + ph - pad_left in [0, w). */
        const ptrdiff_t first = pad_left - (ptrdiff_t)ph, s = (ptrdiff_t)sw;
        ptrdiff_t lo = first <= 0 ? 0 : (first + s - 1) / s;
        ptrdiff_t hi = (ptrdiff_t)w - 1 + first < 0 ? 0 : ((ptrdiff_t)w - 1 + first) / s + 1;
        if (hi > (ptrdiff_t)wq) hi = (ptrdiff_t)wq;
        if (lo > hi) lo = hi;
        __builtin_memset(dst, padv, (size_t)lo * 4);
        __builtin_memset(dst + hi * 4, padv, (wq - (size_t)hi) * 4);
        if (lo < hi && 4 * g + 4 <= c) {
          const ptrdiff_t ix0 = lo * s - first;
          const uint8_t* rr[4];
          for (size_t j = 0; j < 4; j++) rr[j] = x + ((4 * g + j) * h + (size_t)iy) * w + ix0;
          interleave4(simd, dst + lo * 4, rr, (size_t)(hi - lo), sw, flip);
        } else if (lo < hi) {
          /* A last group of fewer than 4 channels: the missing ones hold the pad value. */
          const ptrdiff_t ix0 = lo * s - first;
          for (ptrdiff_t i = lo; i < hi; i++)
            for (size_t j = 0; j < 4; j++)
              dst[i * 4 + (ptrdiff_t)j] =
                  4 * g + j < c ? (uint8_t)(x[((4 * g + j) * h + (size_t)iy) * w + ix0 + (i - lo) * s] ^ flip) : padv;
        }
      }
    }
}

void sparrow_qgemm_pack_conv_c4_rows(const uint8_t* work, size_t c, size_t kh, size_t kw, size_t sh, size_t sw,
                                     size_t dh, size_t dw, size_t ho, size_t wo, size_t oy0, size_t oy1, uint8_t* out) {
  const size_t cq = c / 4; /* c a multiple of 4 (the header's contract) */
  if (oy1 > ho) oy1 = ho;
  if (oy0 >= oy1 || wo == 0 || cq == 0) return;
  const size_t n = (oy1 - oy0) * wo, ldx = sparrow_qgemm_ldx(n);
  size_t hp, wq;
  sparrow_qgemm_c4_extents(kh, kw, sh, sw, dh, dw, ho, wo, &hp, &wq);
  /* Group q = (ky * kw + kx) * cq + g, output row oy: wo consecutive words of one phase row. */
  for (size_t ky = 0; ky < kh; ky++)
    for (size_t kx = 0; kx < kw; kx++) {
      const size_t ph = kx * dw % sw, i0 = kx * dw / sw;
      for (size_t g = 0; g < cq; g++) {
        const size_t q = (ky * kw + kx) * cq + g;
        uint8_t* o = out + q * ldx * 4;
        for (size_t oy = oy0; oy < oy1; oy++)
          __builtin_memcpy(o + (oy - oy0) * wo * 4, work + (((g * hp + oy * sh + ky * dh) * sw + ph) * wq + i0) * 4,
                           wo * 4);
        __builtin_memset(o + n * 4, 0, (ldx - n) * 4);
      }
    }
}

void sparrow_qgemm_pack_conv_c4(const uint8_t* x, size_t c, size_t h, size_t w, size_t kh, size_t kw, size_t sh,
                                size_t sw, size_t dh, size_t dw, ptrdiff_t pad_top, ptrdiff_t pad_left, size_t ho,
                                size_t wo, uint8_t pad, int flip_sign, uint8_t* work, uint8_t* out) {
  sparrow_qgemm_pack_conv_c4_planes(x, c, h, w, kh, kw, sh, sw, dh, dw, pad_top, pad_left, ho, wo, pad, flip_sign,
                                    work);
  sparrow_qgemm_pack_conv_c4_rows(work, c, kh, kw, sh, sw, dh, dw, ho, wo, 0, ho, out);
}
