"""Make the README's figures from a finished demo run (bash scripts/demo.sh):

* docs/demo.jpg -- a contact sheet: the reference photo with its mask outlined, then every photo of the album,
  best score first, marked FOUND (green, the mask tinted) or NOT FOUND (grey), with its score;
* docs/cutouts.jpg -- the exports of the photos the dog was found in: the cut-out (transparent PNG, shown on a
  checkerboard) above the square DreamBooth training crop.

    .venv/bin/python scripts/readme_figure.py   # after bash scripts/demo.sh
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from persam.album import FALLBACK_REFERENCE_SCORE
from persam.concept import read_concept
from persam.io import load_image, load_mask, save_image
from persam.settings import DEFAULT_PRESENCE

ROOT = Path(__file__).resolve().parents[1]
ALBUM = ROOT / "examples" / "album"
OUT = ROOT / "demo_out"
CONCEPT = "chow"  # demo_out/chow.persam, as scripts/demo.sh names it

WIDTH = 1200
GAP = 8
BAND = 46  # label band under a photo
GREEN = (34, 150, 64)
GREY = (120, 120, 120)
BLUE = (30, 110, 230)
WHITE = (255, 255, 255)
INK = (40, 40, 40)


def font(size: int, bold: bool = False) -> ImageFont.ImageFont:
    """DejaVu Sans where installed (most Linux systems), else Pillow's own font."""
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    for path in (name, f"/usr/share/fonts/truetype/dejavu/{name}"):
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            pass
    return ImageFont.load_default(size=size)


def square(image: np.ndarray, side: int) -> Image.Image:
    """The image scaled to fit a side x side square, centred on white."""
    im = Image.fromarray(image)
    im.thumbnail((side, side), Image.LANCZOS)
    tile = Image.new("RGB", (side, side), WHITE)
    tile.paste(im, ((side - im.width) // 2, (side - im.height) // 2))
    return tile


def outline(mask: np.ndarray, width: int) -> np.ndarray:
    """The band of pixels within ``width`` of the mask's border, inside and out."""
    grown, shrunk = mask.copy(), mask.copy()
    for _ in range(width):
        g, s = grown.copy(), shrunk.copy()
        for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            g |= np.roll(grown, (dy, dx), (0, 1))
            s &= np.roll(shrunk, (dy, dx), (0, 1))
        grown, shrunk = g, s
    return grown & ~shrunk


def marked(image: np.ndarray, mask: np.ndarray, color: tuple[int, int, int]) -> np.ndarray:
    """The photo with what is outside the mask dimmed and the mask outlined in ``color``."""
    out = image.astype(np.float32)
    out[~mask] = 0.45 * out[~mask] + 0.55 * 235  # washed out towards white
    out[outline(mask, max(2, round(max(mask.shape) / 160)))] = color
    return out.astype(np.uint8)


def labelled(tile: Image.Image, color: tuple[int, int, int], title: str, detail: str, name: str = "") -> Image.Image:
    """The tile over a coloured band (``title`` in bold, ``detail`` right-aligned), ``name`` in its corner."""
    out = Image.new("RGB", (tile.width, tile.height + BAND), color)
    out.paste(tile, (0, 0))
    draw = ImageDraw.Draw(out, "RGBA")
    draw.text((10, tile.height + BAND // 2), title, fill=WHITE, font=font(19, bold=True), anchor="lm")
    draw.text((tile.width - 10, tile.height + BAND // 2), detail, fill=WHITE, font=font(19), anchor="rm")
    if name:
        small = font(14)
        x0, y0, x1, y1 = draw.textbbox((8, 8), name, font=small)
        draw.rounded_rectangle((x0 - 5, y0 - 4, x1 + 5, y1 + 4), 4, fill=(0, 0, 0, 150))
        draw.text((8, 8), name, fill=WHITE, font=small)
    return out


def records() -> list[dict]:
    """The demo run's results, best score first."""
    rows = [json.loads(line) for line in (OUT / "results.jsonl").read_text().splitlines() if line.strip()]
    return sorted(rows, key=lambda r: -r["score"])


def contact_sheet(rows: list[dict]) -> np.ndarray:
    cols = (len(rows) + 1) // 2
    side = (WIDTH - GAP * cols) * 3 // (3 * cols + 4)  # photo tiles; the reference is 4/3 of one wide
    ref_side = WIDTH - GAP * cols - cols * side
    ref = load_image(ALBUM / "reference" / f"{CONCEPT}.jpg")
    ref_name = f"reference/{CONCEPT}.jpg"
    ref_mask = load_mask(ALBUM / "reference" / f"{CONCEPT}_mask.png", (ref.shape[1], ref.shape[0]))
    ref_tile = labelled(square(marked(ref, ref_mask, BLUE), ref_side), BLUE, "REFERENCE", "+ mask", ref_name)

    head = 40
    height = head + 2 * (side + BAND) + GAP
    sheet = Image.new("RGB", (WIDTH, height), WHITE)
    draw = ImageDraw.Draw(sheet)
    meta, _ = read_concept(OUT / f"{CONCEPT}.persam")
    threshold = DEFAULT_PRESENCE * (meta.get("reference_score") or FALLBACK_REFERENCE_SCORE)
    ref_y = head + (height - head - ref_tile.height) // 2
    draw.text((ref_side // 2, ref_y - 18), "One photo of MY dog", fill=BLUE, font=font(18, bold=True), anchor="mm")
    title = f"The album, best score first: FOUND when the score is {threshold:.2f} or more"
    draw.text((ref_side + GAP, head // 2 - 2), title, fill=INK, font=font(18, bold=True), anchor="lm")
    sheet.paste(ref_tile, (0, ref_y))
    for i, row in enumerate(rows):
        image = load_image(row["image"])
        mask = load_mask(OUT / row["mask"], (image.shape[1], image.shape[0]))
        name = Path(row["image"]).name
        if row["present"]:
            tile = labelled(square(marked(image, mask, GREEN), side), GREEN, "FOUND", f"{row['score']:.2f}", name)
        else:
            tile = labelled(square(image, side), GREY, "NOT FOUND", f"{row['score']:.2f}", name)
        x = ref_side + GAP + (i % cols) * (side + GAP)
        y = head + (i // cols) * (side + BAND + GAP)
        sheet.paste(tile, (x, y))
    return np.asarray(sheet)


def checkerboard(w: int, h: int, cell: int = 12) -> Image.Image:
    yy, xx = np.mgrid[:h, :w]
    board = np.where(((yy // cell + xx // cell) % 2)[..., None] == 0, 250, 214).astype(np.uint8)
    return Image.fromarray(np.repeat(board, 3, axis=2))


def exports_sheet(rows: list[dict]) -> np.ndarray:
    found = [r for r in rows if r["present"]]
    label_w = 230
    side = (WIDTH - label_w - GAP * len(found)) // max(1, len(found))
    height = 2 * side + 3 * GAP + 30
    sheet = Image.new("RGB", (WIDTH, height), WHITE)
    draw = ImageDraw.Draw(sheet)
    for k, (title, detail) in enumerate((("cut-outs", "cutouts/*.png: RGBA,\ntransparent background"),
                                         ("DreamBooth crops", f"dreambooth/{CONCEPT}/*.png:\n512 x 512, white"))):
        y = 30 + k * (side + GAP) + side // 2
        draw.text((0, y - 14), title, fill=INK, font=font(20, bold=True), anchor="lm")
        draw.multiline_text((0, y + 10), detail, fill=GREY, font=font(15), anchor="la")
    for i, row in enumerate(found):
        stem = Path(row["image"]).stem
        x = label_w + i * (side + GAP)
        draw.text((x + side // 2, 14), Path(row["image"]).name, fill=INK, font=font(16), anchor="mm")
        cut = Image.open(OUT / "cutouts" / f"{stem}.png").convert("RGBA")
        cut.thumbnail((side, side), Image.LANCZOS)
        tile = checkerboard(side, side)
        tile.paste(cut, ((side - cut.width) // 2, (side - cut.height) // 2), cut)
        sheet.paste(tile, (x, 30))
        crop = Image.open(OUT / "dreambooth" / CONCEPT / f"{stem}.png").convert("RGB")
        crop = crop.resize((side, side), Image.LANCZOS)
        sheet.paste(crop, (x, 30 + side + GAP))
        draw.rectangle((x, 30 + side + GAP, x + side - 1, 30 + 2 * side + GAP - 1), outline=(200, 200, 200))
    return np.asarray(sheet)


def main() -> int:
    if not (OUT / "results.jsonl").is_file():
        print("no demo_out/results.jsonl: run bash scripts/demo.sh first", file=sys.stderr)
        return 1
    rows = records()
    save_image(ROOT / "docs" / "demo.jpg", contact_sheet(rows), quality=88)
    save_image(ROOT / "docs" / "cutouts.jpg", exports_sheet(rows), quality=88)
    print("wrote docs/demo.jpg and docs/cutouts.jpg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
