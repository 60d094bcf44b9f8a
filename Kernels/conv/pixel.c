/* The direct convolution's pixel-major dense mode (direct.c creates it; dconv.h documents the
 * kernels): 6-pixel blocks of the flattened output grid by panels of 16 output channels, one,
 * two or four panels per kernel call, K in L1-sized slices for long K, tasks split by panel
 * groups and pixel chunks. */
#include "direct.h"

/* Pixel mode: 6-pixel blocks per image (a block never spans two images). */
static size_t image_blocks(const sparrow_direct_conv* d) {
  return (d->s.ho * d->s.wo + SPARROW_PCONV_MR - 1) / SPARROW_PCONV_MR;
}

/* Pixel mode: panels per group that tasks keep together (the widest multi-panel call). */
static size_t wide_group(const sparrow_direct_conv_plan* p) { return p->pfn4 != NULL ? 4 : p->pfn2 != NULL ? 2 : 1; }

/* Pixel mode: with too few panels to share, each panel range also splits its pixel blocks (of
 * every image of the batch). When the weight is smaller than the padded input, the tasks split
 * the pixels alone, each running every panel: a task per panel range streams the whole input
 * once per range, where a pixel chunk reads its own input rows once for all panels and only the
 * (smaller) weight is read by every thread. Measured on ResNet-18's 7x7/2 stem (Zen 4, 2
 * threads, C harness): 1.52 -> 1.43 ms; the 64-channel 3x3 layers (0.86 MB input, 0.15 MB
 * weight) unchanged within noise. Two chunks per thread: each chunk re-reads the input rows
 * around its edges and starts cold, and the 64-channel 56x56 layer's rows phase grew with the
 * chunk count (Intel Xeon, 2 threads: 2 chunks 0.74 ms, 4 0.76, 8 0.80, 16 0.83, 32 0.85);
 * ResNet-18 dense at 2 threads 14.2-14.8 -> 13.9 ms with 2 per thread instead of 4 (one per
 * thread: 13.8-14.1, with no room to balance a slower thread). */
/* Floats a pixel block's window origins index per image: the padded planes, or in raw mode the
 * input itself. */
static size_t image_in_floats(const sparrow_direct_conv* d) {
  return d->raw ? d->s.channels * d->s.h * d->s.w : sparrow_direct_planes_bytes(d) / sizeof(float);
}

void sparrow_direct_pixel_split(sparrow_direct_conv_plan* p, size_t nt) {
  const sparrow_direct_conv* d = p->conv;
  /* Wide calls: tasks split groups of panels, never one. */
  const size_t g = wide_group(p), units = (d->panels + g - 1) / g;
  const size_t blocks = image_blocks(d) * p->images;
  const size_t weight = (d->pstart != NULL ? d->pstart[d->panels] : d->panels * d->k) * d->mr;
  if (nt > 1 && weight < image_in_floats(d) * p->images && blocks >= nt) {
    p->row_tasks = p->pixel_chunks = nt * 2 < blocks ? nt * 2 : blocks;
    return;
  }
  p->row_tasks = nt == 1 ? 1 : nt * 4 < units ? nt * 4 : units;
  p->pixel_chunks = 1;
  if (nt > 1 && units < nt * 2) p->pixel_chunks = (nt * 2 + units - 1) / units;
  if (p->pixel_chunks > blocks) p->pixel_chunks = blocks;
  p->row_tasks *= p->pixel_chunks;
}

/* Pixel mode: a walk over the batch's pixel blocks (cursor_at once, then cursor_next), giving each
 * block's MR window origins without the divisions per block that finding block b from scratch
 * takes (3.6% of the digits model at batch 8 on Zen 5, where ~1,800 blocks per run are 16 or
 * fewer pixels' work each). */
typedef struct {
  const float* img;  /* the block's image's padded planes (raw mode: its input) */
  size_t image_ws;   /* floats of padded planes per image (raw mode: of input) */
  size_t row_step;   /* floats from one output row's window origin to the next's */
  size_t col_step;   /* from one output column's to the next's (1 in split phases; raw: stride_w) */
  size_t wo, npix;   /* output columns, pixels per image */
  size_t cout_npix;  /* output floats per image */
  size_t yimg;       /* output offset of the block's image */
  size_t q0, oy, ox; /* the block's first pixel in its image, its row and column */
} pixel_cursor;

static pixel_cursor cursor_at(const sparrow_direct_conv_plan* p, const float* buf, size_t b) {
  const sparrow_direct_conv* d = p->conv;
  const size_t wo = d->s.wo, npix = d->s.ho * wo, bpi = image_blocks(d), img = b / bpi;
  const size_t q0 = (b % bpi) * SPARROW_PCONV_MR;
  const size_t image_ws = image_in_floats(d);
  return (pixel_cursor){.img = (d->raw ? p->x : buf) + img * image_ws,
                        .image_ws = image_ws,
                        .row_step = d->raw ? d->s.stride_h * d->s.w : d->s.stride_h * d->s.stride_w * d->e.phase_len,
                        .col_step = d->raw ? d->s.stride_w : 1,
                        .wo = wo,
                        .npix = npix,
                        .cout_npix = d->cout * npix,
                        .yimg = img * d->cout * npix,
                        .q0 = q0,
                        .oy = q0 / wo,
                        .ox = q0 % wo};
}

/* The block's MR window origins (past its last pixel, the last again), its pixel count and, in
 * *yoff, where its output starts (its image's channel 0). */
static size_t cursor_pixels(const pixel_cursor* c, const float** px, size_t* yoff) {
  const size_t pixels = c->npix - c->q0 < SPARROW_PCONV_MR ? c->npix - c->q0 : SPARROW_PCONV_MR;
  *yoff = c->yimg + c->q0;
  size_t oy = c->oy, ox = c->ox;
  for (size_t i = 0; i < SPARROW_PCONV_MR; i++) {
    px[i] = c->img + oy * c->row_step + ox * c->col_step;
    if (i + 1 < pixels && ++ox == c->wo) ox = 0, oy++;
  }
  return pixels;
}

static void cursor_next(pixel_cursor* c) {
  c->q0 += SPARROW_PCONV_MR;
  if (c->q0 >= c->npix) {
    c->q0 = c->oy = c->ox = 0;
    c->img += c->image_ws;
    c->yimg += c->cout_npix;
    return;
  }
  c->ox += SPARROW_PCONV_MR;
  while (c->ox >= c->wo) c->ox -= c->wo, c->oy++;
}

/* Pixel mode with a fused residual: added to output channels [c0, c1) of pixel blocks [b0, b1)
 * of the batch (contiguous pixels per image and channel) right after the task wrote them. */
static void pixel_residual(const sparrow_direct_conv_plan* p, size_t b0, size_t b1, size_t c0, size_t c1) {
  const sparrow_direct_conv* d = p->conv;
  const size_t npix = d->s.ho * d->s.wo, bpi = image_blocks(d);
  for (size_t b = b0; b < b1;) {
    const size_t img = b / bpi, e = (img + 1) * bpi < b1 ? (img + 1) * bpi : b1;
    const size_t q0 = (b % bpi) * SPARROW_PCONV_MR, q_end = ((e - 1) % bpi + 1) * SPARROW_PCONV_MR;
    const size_t q1 = q_end < npix ? q_end : npix, off = img * d->cout * npix;
    for (size_t c = c0; c < c1; c++)
      sparrow_direct_residual(p->y + off + c * npix + q0, p->residual + off + c * npix + q0, q1 - q0, p->residual_relu);
    b = e;
  }
}

/* Output bytes between fused-residual passes in the unsliced loop: the group's outputs of that
 * many blocks are still in L2 when added, and each channel's run is long enough that the pass
 * costs no more than a separate one (16-channel layers on 16x16 maps: 16-block chunks, runs of
 * 96 floats, cost 2.4x a separate pass; ResNet-18's 64-channel 56x56 layers gain either way). */
#define PCONV_RESIDUAL_BYTES (96u << 10)

/* K slices of the pixel mode: a 16 KiB slice of a weight panel stays in L1 while up to
 * PCONV_PART_BLOCKS pixel blocks pass, their partial sums on the stack. */
#define PCONV_SLICE_K 256
#define PCONV_PART_BLOCKS 64

/* Pixel mode: panel q's columns (K), packed weight and input offsets. */
typedef struct {
  const float* wp;
  const size_t* koff;
  const size_t* pstart; /* compacted: per-panel starts into wp/koff; NULL: k columns each */
  size_t k;
} pixel_panels;

static size_t panel_k(const pixel_panels* w, size_t q) {
  return w->pstart != NULL ? w->pstart[q + 1] - w->pstart[q] : w->k;
}
static const float* panel_w(const pixel_panels* w, size_t q) {
  return w->wp + (w->pstart != NULL ? w->pstart[q] : q * w->k) * SPARROW_PCONV_NR;
}
static const size_t* panel_koff(const pixel_panels* w, size_t q) {
  return w->pstart != NULL ? w->koff + w->pstart[q] : w->koff;
}

/* 1 when panel q holds an active output row: every panel of a compacted plan (its rows are the
 * kept ones, sparrow_direct_conv_plan.out_y), else as the output list says. */
static int panel_active(const sparrow_direct_conv_plan* p, size_t q, size_t nr) {
  return p->out_y != NULL || sparrow_direct_panel_active(&p->lists, q, nr);
}

/* Pixel mode, full panels: how many adjacent panels from q (below end) one call takes: 4 (if
 * `most` allows) or 2 when the entry has such a kernel and they are all active, else 1 (panel q
 * is active). */
static size_t panel_span(const sparrow_direct_conv_plan* p, size_t q, size_t end, size_t most) {
  const size_t nr = SPARROW_PCONV_NR;
  if (most >= 4 && p->pfn4 != NULL && q + 3 < end && panel_active(p, q + 1, nr) && panel_active(p, q + 2, nr) &&
      panel_active(p, q + 3, nr))
    return 4;
  if (p->pfn2 != NULL && q + 1 < end && panel_active(p, q + 1, nr)) return 2;
  return 1;
}

/* Pixel mode, task t: pixel chunk t % pixel_chunks of weight panel range t / pixel_chunks.
 * K up to 2 * PCONV_SLICE_K: panels go in groups whose weights (about 192 KiB) stay in L2 while
 * every 6-pixel block of the chunk passes, each block's input lines reused from L1 across the
 * group's panels. Longer K (ResNet-18's 256- and 512-channel 3x3 layers: panels of 147 and 295
 * KiB, L2-bandwidth bound unsliced) runs in slices of PCONV_SLICE_K, a panel at a time. With an
 * input list, K is the active channels' (copied by prepare); compacted panels each have their
 * own K. */
void sparrow_direct_pixel_rows(const sparrow_direct_conv_plan* p, size_t t) {
  const sparrow_direct_conv* d = p->conv;
  const size_t ranges = p->row_tasks / p->pixel_chunks, r = t / p->pixel_chunks, ch = t % p->pixel_chunks;
  const size_t p0 = sparrow_panel_range_start(d->panels, r, ranges, wide_group(p));
  const size_t p1 = sparrow_panel_range_start(d->panels, r + 1, ranges, wide_group(p));
  const size_t npix = d->s.ho * d->s.wo, blocks = image_blocks(d) * p->images;
  size_t yoff;
  const size_t b0 = blocks * ch / p->pixel_chunks, b1 = blocks * (ch + 1) / p->pixel_chunks;
  const size_t nr = SPARROW_PCONV_NR;
  const float* buf = p->workspace;
  pixel_panels w = {d->wp, d->pstart != NULL ? d->pkoff : d->koff, d->pstart, d->k};
  /* With an input list the active channels' copy (a compacted plan's view already has it). */
  if (p->lists.in_channels != NULL && p->out_y == NULL) {
    const sparrow_direct_dense_active a = sparrow_direct_dense_active_at(d, p->workspace);
    w = (pixel_panels){a.wp, a.koff, a.pstart, p->lists.n_in_channels * d->s.kh * d->s.kw};
  }
  size_t kmax = 0, ksum = 0;
  for (size_t q = p0; q < p1; q++) {
    const size_t kq = panel_k(&w, q);
    kmax = kq > kmax ? kq : kmax;
    ksum += kq;
  }
  const float* px[SPARROW_PCONV_MR];
  /* Four or two adjacent active panels per call where the kernel entry has such forms. */
  const int wide = p->pfn2 != NULL && w.pstart == NULL;
  /* Slices past 2 * PCONV_SLICE_K columns, but four-panel calls keep their panels whole while
   * they fit in 192 KiB together (ResNet-18's 64-channel 3x3 layers: 147 KiB). Sliced layers
   * (bound by L2/L3 bandwidth, not by the FMAs) pair at most two panels, whose slices of
   * PCONV_SLICE_K / 2 columns fit L1 together: measured in ResNet-18 on the Xeon, four-panel
   * calls on 64 KiB slices made its 512-channel layers 1.93 -> 2.22 ms. */
  const int quads = wide && p->pfn4 != NULL && kmax * 4 * nr * sizeof(float) <= (192u << 10);
  if (!quads && kmax > 2 * PCONV_SLICE_K) {
    float part[PCONV_PART_BLOCKS * 2 * SPARROW_PCONV_MR * SPARROW_PCONV_NR] __attribute__((aligned(64)));
    for (size_t q = p0; q < p1;) {
      if (!panel_active(p, q, nr)) {
        q++;
        continue;
      }
      const size_t span = wide ? panel_span(p, q, p1, 2) : 1;
      const size_t r0 = q * nr, chans = d->cout - r0 < span * nr ? d->cout - r0 : span * nr;
      /* The partial sums of up to 64 blocks of up to two panels on the stack. */
      const size_t k = panel_k(&w, q), slice = PCONV_SLICE_K / span;
      const float* wq = panel_w(&w, q);
      const size_t* kq = panel_koff(&w, q);
      const float* bias = p->bias != NULL ? p->bias + r0 : NULL;
      for (size_t c0 = b0; c0 < b1; c0 += PCONV_PART_BLOCKS) {
        const size_t c1 = b1 - c0 < PCONV_PART_BLOCKS ? b1 : c0 + PCONV_PART_BLOCKS;
        size_t k0 = 0;
        do {
          const size_t kc = k - k0 < slice ? k - k0 : slice;
          /* The next weight slice (this call's panels', else the next panel's first) is fetched
           * into L2 a share per block while this slice's blocks run, instead of missing on the
           * first; one stream per panel. */
          const float* next = k0 + kc < k ? wq + (k0 + kc) * nr : q + span < p1 ? panel_w(&w, q + span) : NULL;
          const size_t streams = k0 + kc < k ? span : wide && q + span < p1 ? panel_span(p, q + span, p1, 2) : 1;
          const size_t lines = slice * nr * sizeof(float) / 64, nb = c1 - c0;
          const size_t per = (lines + nb - 1) / nb;
          pixel_cursor cur = cursor_at(p, buf, c0);
          for (size_t b = c0; b < c1; b++, cursor_next(&cur)) {
            const size_t pixels = cursor_pixels(&cur, px, &yoff);
            sparrow_pconv_call(span, p->pfn, p->pfn2, p->pfn4, kc, wq + k0 * nr, k * nr, kq + k0, px, pixels, chans,
                               bias, p->lo, p->hi, p->y + yoff + r0 * npix, npix, 1,
                               part + (b - c0) * span * SPARROW_PCONV_MR * nr, k0 == 0, k0 + kc == k);
            if (next != NULL)
              for (size_t l = (b - c0) * per; l < (b - c0 + 1) * per && l < lines; l++)
                for (size_t s = 0; s < streams; s++) __builtin_prefetch(next + s * k * nr + l * 16, 0, 2);
          }
          k0 += kc;
        } while (k0 < k);
        if (p->residual != NULL) pixel_residual(p, c0, c1, r0, r0 + chans);
      }
      q += span;
    }
    return;
  }
  const size_t panel_bytes = p1 > p0 ? ksum / (p1 - p0) * nr * sizeof(float) : 0;
  size_t group = panel_bytes == 0 ? p1 - p0 + 1 : panel_bytes >= (192u << 10) ? 1 : (192u << 10) / panel_bytes;
  if (wide && group > wide_group(p)) group -= group % wide_group(p);
  for (size_t g0 = p0; g0 < p1; g0 += group) {
    const size_t g1 = p1 - g0 < group ? p1 : g0 + group;
    const size_t block_bytes = (g1 - g0) * nr * SPARROW_PCONV_MR * sizeof(float);
    const size_t chunk = p->residual == NULL ? b1 - b0 : PCONV_RESIDUAL_BYTES / block_bytes + 1;
    for (size_t c0 = b0; c0 < b1; c0 += chunk) {
      const size_t c1 = b1 - c0 < chunk ? b1 : c0 + chunk;
      pixel_cursor cur = cursor_at(p, buf, c0);
      for (size_t b = c0; b < c1; b++, cursor_next(&cur)) {
        const size_t pixels = cursor_pixels(&cur, px, &yoff);
        for (size_t q = g0; q < g1;) {
          if (!panel_active(p, q, nr)) {
            q++;
            continue;
          }
          const size_t span = wide ? panel_span(p, q, g1, 4) : 1;
          const size_t r0 = q * nr, chans = d->cout - r0 < span * nr ? d->cout - r0 : span * nr;
          sparrow_pconv_call(span, p->pfn, p->pfn2, p->pfn4, panel_k(&w, q), panel_w(&w, q), w.k * nr,
                             panel_koff(&w, q), px, pixels, chans, p->bias != NULL ? p->bias + r0 : NULL, p->lo, p->hi,
                             p->y + yoff + r0 * npix, npix, 1, NULL, 1, 1);
          q += span;
        }
      }
      if (p->residual != NULL) pixel_residual(p, c0, c1, g0 * nr, g1 * nr < d->cout ? g1 * nr : d->cout);
    }
  }
}
