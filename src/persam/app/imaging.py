"""Pictures the app sends back: PNG bytes, data URLs, preview sizes, the page's mask overlay, boxes and RLE.

Pure functions of arrays and images (no request, no state), shared by the page's routes and the API.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
from PIL import Image

PREVIEW_SIDE = 1600  # the longest side of the photos the page shows (clicks are mapped back to full size)
MASK_RGBA = (37, 99, 235)  # the page's mask colour


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False, compress_level=3)
    return buf.getvalue()


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def preview_size(width: int, height: int) -> tuple[int, int]:
    scale = min(1.0, PREVIEW_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def mask_preview(mask: np.ndarray) -> bytes:
    """A translucent blue PNG of ``mask`` with an opaque outline, at the page's preview size."""
    h, w = mask.shape
    small = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(preview_size(w, h), Image.NEAREST)) > 0
    edge = small.copy()
    edge[1:-1, 1:-1] = small[1:-1, 1:-1] & ~(small[:-2, 1:-1] & small[2:, 1:-1] & small[1:-1, :-2] & small[1:-1, 2:])
    rgba = np.zeros((*small.shape, 4), np.uint8)
    rgba[small] = (*MASK_RGBA, 110)
    rgba[edge] = (*MASK_RGBA, 255)
    return png_bytes(Image.fromarray(rgba, "RGBA"))


def save_preview(rgb: np.ndarray, path: Path) -> None:
    """A JPEG of ``rgb`` no larger than the page's preview size."""
    from ..io import save_image

    image = Image.fromarray(rgb)
    size = preview_size(image.width, image.height)
    save_image(path, np.asarray(image.resize(size, Image.BILINEAR)) if size != image.size else rgb, quality=88)
