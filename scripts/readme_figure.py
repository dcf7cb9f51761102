"""Make docs/demo.jpg (the README picture) from a finished demo run: reference | result, side by side.

    .venv/bin/python scripts/readme_figure.py   # after bash scripts/demo.sh
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

from persam.io import load_image, load_mask, overlay, save_image

ROOT = Path(__file__).resolve().parents[1]
BOX = (90, 75, 690, 440)  # the --ref-box of scripts/demo.sh
HEIGHT = 360


def main() -> int:
    ref = load_image(ROOT / "examples" / "motorcycle_left.png")
    ref_mask = load_mask(ROOT / "demo_out" / "reference_mask.png", (ref.shape[1], ref.shape[0]))
    left = overlay(ref, ref_mask, box=BOX, color=(40, 200, 60))
    right = load_image(ROOT / "demo_out" / "motorcycle_right_overlay.jpg")
    tiles = []
    for tile in (left, right):
        im = Image.fromarray(tile)
        tiles.append(np.asarray(im.resize((round(im.width * HEIGHT / im.height), HEIGHT), Image.LANCZOS)))
    gap = np.full((HEIGHT, 8, 3), 255, np.uint8)
    save_image(ROOT / "docs" / "demo.jpg", np.concatenate([tiles[0], gap, tiles[1]], axis=1), quality=88)
    print("wrote docs/demo.jpg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
