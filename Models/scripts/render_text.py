#!/usr/bin/env python3
"""Render pages and text lines with Pillow and Debian's DejaVu fonts, preprocessed as RapidOCR feeds
the PP-OCR detector and direction classifier: real inputs for deviation, benchmark and gate
measurements (issue #5, item 3). Seeded: a re-run with the same Pillow/FreeType writes the same
arrays (manifest.json records their sha256 and the versions).

Preprocessing (rapidocr-onnxruntime 1.4.4, read from its wheel, Apache-2.0):
- utils/load_image.py `LoadImage.convert_img`: a picture opened by Pillow (RGB) is turned to BGR
  (`cv2.COLOR_RGB2BGR`), so the models see channels in B, G, R order.
- ch_ppocr_det/utils.py `DetPreProcess` with config.yaml `Det` (limit_side_len 736, limit_type
  min, mean = std = 0.5): scale so the short side is at least 736, round each side to a multiple of
  32, then (x / 255 - 0.5) / 0.5, HWC -> CHW, batch 1. The pages here are drawn at sides that are
  already multiples of 32 with the short side >= 736 (default 736 x 736), so that resize is the
  identity and no OpenCV is needed: the arrays are exactly what RapidOCR would feed. (--side
  renders other square sizes, e.g. 640 or 960, which RapidOCR itself would resize; they are given
  as the detector accepts any multiple of 32.)
- ch_ppocr_cls/text_cls.py `TextClassifier.resize_norm_img` with cls_image_shape [3, 48, 192]:
  a text-line crop is resized to height 48 (width ceil(48 * w / h), at most 192), scaled to
  (x / 255 - 0.5) / 0.5 and zero-padded on the right to 192. The lines here are drawn at height
  48 and at most 192 wide, so again only the normalisation and the padding apply. Half of them are
  rotated by 180 degrees (label 1, '180' in config.yaml's label_list ['0', '180']).

Fonts: the six TrueType files of Debian's `fonts-dejavu-core` (apt-get install fonts-dejavu-core).

Writes (default Models/cache/text/, git-ignored):
  page<i>.png                 the rendered page (RGB), i = 0 .. pages-1
  det_page<i>.npy             float32 [1, 3, H, W]: the detector's input for that page
  det_pages.npy               float32 [pages, 3, H, W]: all of them as one batch
  cls_lines.png               the classifier crops stacked vertically (as drawn, before padding)
  cls_lines.npy               float32 [lines, 3, 48, 192]: the classifier's input batch
  cls_labels.npy              int64 [lines]: 0 upright, 1 rotated 180 degrees
  manifest.json               sizes, texts, line boxes, sha256 of every file, versions, command

  .venv-models/bin/python Models/scripts/render_text.py                 # 8 pages 736x736, 32 lines
  .venv-models/bin/python Models/scripts/render_text.py --side 640      # into Models/cache/text-640/
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, features

ROOT = Path(__file__).resolve().parents[2]
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
# Exactly the files of Debian's fonts-dejavu-core (dpkg -L fonts-dejavu-core).
FONTS = ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf",
         "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf"]
CLS_H, CLS_W = 48, 192
WORDS = """
invoice total amount due date payment received account number customer order shipping address
street city postal code phone email reference quantity price unit tax subtotal discount balance
report summary section chapter page table figure results method analysis data sample value
model network layer sparse dense weight channel filter kernel runtime memory latency throughput
the of and to in for with on by from at as is are was were be this that these those an or not
north south east west station platform train departs arrives minutes hours monday tuesday
wednesday thursday friday saturday sunday january february march april may june july august
september october november december open closed entrance exit floor room building office
welcome please thank you notice warning caution danger keep clear no parking private staff only
coffee tea bread milk butter cheese apples oranges rice pasta sugar salt water juice bottle
""".split()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def token(rng: np.random.Generator) -> str:
    """A word, a number, a price, a date or a code: the mix printed pages carry."""
    r = rng.random()
    if r < 0.70:
        w = WORDS[rng.integers(len(WORDS))]
        return w.capitalize() if rng.random() < 0.2 else (w.upper() if rng.random() < 0.05 else w)
    if r < 0.80:
        return str(int(rng.integers(1, 100000)))
    if r < 0.88:
        return f"{rng.integers(1, 1000)}.{rng.integers(0, 100):02d}"
    if r < 0.94:
        return f"{rng.integers(1, 29):02d}/{rng.integers(1, 13):02d}/{rng.integers(1990, 2030)}"
    return "".join(rng.choice(list("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"), int(rng.integers(4, 9))))


def font(rng: np.random.Generator, size: int) -> tuple[str, ImageFont.FreeTypeFont]:
    name = FONTS[rng.integers(len(FONTS))]
    return name, ImageFont.truetype(str(FONT_DIR / name), size)


def to_bgr_normalised(rgb: np.ndarray) -> np.ndarray:
    """HWC uint8 RGB -> CHW float32 BGR, (x / 255 - 0.5) / 0.5 as RapidOCR does."""
    bgr = rgb[:, :, ::-1].astype(np.float32)
    return ((bgr / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)


def render_page(index: int, h: int, w: int) -> tuple[Image.Image, list[dict]]:
    """Paragraphs of lines at sizes 12..56 px in the six fonts, dark on light (every fourth page
    light on dark), with mild seeded noise; returns the picture and each line's text and box."""
    rng = np.random.default_rng(zlib.crc32(f"text/page/{index}".encode()))
    dark_bg = index % 4 == 3
    bg = tuple(int(v) for v in (rng.integers(10, 60, 3) if dark_bg else rng.integers(215, 256, 3)))
    img = Image.new("RGB", (w, h), bg)
    draw = ImageDraw.Draw(img)
    lines, y = [], int(rng.integers(8, 40))
    while True:
        size = int(rng.choice([12, 14, 16, 18, 20, 24, 28, 32, 40, 48, 56]))
        fname, f = font(rng, size)
        x0 = int(rng.integers(8, max(9, w // 5)))
        x1 = int(rng.integers(w * 3 // 5, w - 8))
        if y + size * 1.4 > h - 8:
            break
        for _ in range(int(rng.integers(1, 5))):          # a paragraph in one font and size
            if y + size * 1.4 > h - 8:
                break
            text = token(rng)
            while True:
                nxt = text + " " + token(rng)
                if draw.textlength(nxt, font=f) > x1 - x0 or rng.random() < 0.04:
                    break
                text = nxt
            fg = tuple(int(v) for v in (rng.integers(190, 256, 3) if dark_bg else rng.integers(0, 90, 3)))
            draw.text((x0, y), text, font=f, fill=fg)
            box = [int(v) for v in draw.textbbox((x0, y), text, font=f)]
            lines.append({"text": text, "font": fname, "size": size, "box_xyxy": box})
            y += int(size * rng.uniform(1.25, 1.6))
        y += int(rng.integers(4, 40))                       # paragraph gap
    a = np.asarray(img).astype(np.int16) + rng.normal(0, 3, (h, w, 3)).round().astype(np.int16)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)), lines


def render_line(index: int) -> tuple[Image.Image, dict]:
    """One text line drawn at height 48 and at most 192 wide (what RapidOCR's classifier resize would
    give a detected line), rotated by 180 degrees for odd indices."""
    rng = np.random.default_rng(zlib.crc32(f"text/line/{index}".encode()))
    size = int(rng.integers(22, 36))
    fname, f = font(rng, size)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text = token(rng)
    for _ in range(int(rng.integers(0, 4))):
        nxt = text + " " + token(rng)
        if probe.textlength(nxt, font=f) > CLS_W - 8:
            break
        text = nxt
    while probe.textlength(text, font=f) > CLS_W - 8 and size > 12:   # one long token: smaller type
        size -= 2
        f = ImageFont.truetype(str(FONT_DIR / fname), size)
    l, t, r, b = probe.textbbox((0, 0), text, font=f)
    width = min(CLS_W, int(r - l) + int(rng.integers(4, 9)))
    bg = tuple(int(v) for v in rng.integers(200, 256, 3))
    fg = tuple(int(v) for v in rng.integers(0, 80, 3))
    img = Image.new("RGB", (width, CLS_H), bg)
    ImageDraw.Draw(img).text(((width - (r - l)) // 2 - l, (CLS_H - (b - t)) // 2 - t), text, font=f, fill=fg)
    rotated = index % 2 == 1
    if rotated:
        img = img.transpose(Image.Transpose.ROTATE_180)
    a = np.asarray(img).astype(np.int16) + rng.normal(0, 3, (CLS_H, width, 3)).round().astype(np.int16)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)), {
        "text": text, "font": fname, "size": size, "width": width, "label": int(rotated)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pages", type=int, default=8)
    p.add_argument("--lines", type=int, default=32, help="classifier crops (half rotated by 180 degrees)")
    p.add_argument("--side", type=int, default=736, help="square page side, a multiple of 32 (RapidOCR: short side >= 736)")
    p.add_argument("--out", default="", help="default Models/cache/text (Models/cache/text-<side> if --side is not 736)")
    a = p.parse_args()
    if a.side % 32 or not 32 <= a.side <= 4096:
        sys.exit(f"--side {a.side}: the detector needs a multiple of 32 in [32, 4096]")
    if not 1 <= a.pages <= 256 or not 1 <= a.lines <= 4096:
        sys.exit("--pages must be in [1, 256] and --lines in [1, 4096]")
    missing = [f for f in FONTS if not (FONT_DIR / f).exists()]
    if missing:
        sys.exit(f"missing fonts {missing} in {FONT_DIR}: apt-get install fonts-dejavu-core")
    out = Path(a.out) if a.out else ROOT / "Models" / "cache" / ("text" if a.side == 736 else f"text-{a.side}")
    out.mkdir(parents=True, exist_ok=True)

    pages, det = [], []
    for i in range(a.pages):
        img, lines = render_page(i, a.side, a.side)
        img.save(out / f"page{i}.png", optimize=False)
        x = to_bgr_normalised(np.asarray(img))[None]
        np.save(out / f"det_page{i}.npy", x)
        det.append(x)
        pages.append({"png": f"page{i}.png", "npy": f"det_page{i}.npy", "shape": list(x.shape), "lines": lines})
    np.save(out / "det_pages.npy", np.concatenate(det))

    crops, infos = [], []
    for i in range(a.lines):
        img, info = render_line(i)
        crops.append(img)
        infos.append(info)
    sheet = Image.new("RGB", (CLS_W, CLS_H * len(crops)), (128, 128, 128))
    batch = np.zeros((len(crops), 3, CLS_H, CLS_W), np.float32)    # zero = RapidOCR's padding
    for i, img in enumerate(crops):
        sheet.paste(img, (0, i * CLS_H))
        batch[i, :, :, :img.width] = to_bgr_normalised(np.asarray(img))
    sheet.save(out / "cls_lines.png", optimize=False)
    np.save(out / "cls_lines.npy", batch)
    np.save(out / "cls_labels.npy", np.array([i["label"] for i in infos], np.int64))

    files = sorted(f.name for f in out.iterdir() if f.suffix in (".png", ".npy"))
    manifest = {
        "description": "Text rendered by Models/scripts/render_text.py for the PP-OCR models; see Models/README.md.",
        "command": "python Models/scripts/render_text.py" + (f" --side {a.side}" if a.side != 736 else "")
                   + (f" --pages {a.pages}" if a.pages != 8 else "") + (f" --lines {a.lines}" if a.lines != 32 else ""),
        "preprocessing": "rapidocr-onnxruntime 1.4.4: RGB -> BGR, (x / 255 - 0.5) / 0.5, CHW; detector pages at "
                         "multiples of 32 (resize is the identity); classifier crops 48 high, <= 192 wide, zero-padded to 192",
        "fonts": [f"{FONT_DIR / f} (fonts-dejavu-core)" for f in FONTS],
        "versions": {"pillow": Image.__version__, "freetype": features.version("freetype2"), "numpy": np.__version__},
        "detector": {"batch_file": "det_pages.npy", "shape": [a.pages, 3, a.side, a.side], "pages": pages},
        "classifier": {"file": "cls_lines.npy", "labels_file": "cls_labels.npy", "shape": list(batch.shape),
                       "labels": "0 upright, 1 rotated 180 degrees", "lines": infos},
        "sha256": {f: sha256(out / f) for f in files},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    n_lines = sum(len(pg["lines"]) for pg in pages)
    print(f"wrote {a.pages} pages {a.side}x{a.side} ({n_lines} lines of text) and {a.lines} classifier crops to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
