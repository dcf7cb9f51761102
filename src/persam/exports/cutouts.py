"""Cut-outs (transparent PNGs of the object) and DreamBooth-ready square crops.

The pure functions work on one (image, mask) pair; :func:`write_cutouts` and :func:`write_dreambooth` do a
whole run folder, one photo at a time. Cut-outs keep the photo's pixels under the transparent part (an
editor can bring them back; every viewer shows them transparent). DreamBooth crops put white under a
transparent background because training scripts (diffusers' ``train_dreambooth.py`` among them) call
``convert("RGB")``, which drops alpha: they then see a white background instead of a black one. They go
to one flat folder per concept, ``dreambooth/<concept>/``, as those scripts list the folder without
recursing.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
from PIL import Image

from ..edges import soft_alpha
from ..io import atomic_write
from .records import Instance, Photo, mask_box

BACKGROUNDS = ("white", "transparent", "keep")
CUTOUT_MARGIN = 0.08
CROP_MARGIN = 0.10
WHITE = 255


def _box(mask: np.ndarray) -> tuple[int, int, int, int]:
    box = mask_box(np.asarray(mask, dtype=bool))
    if box is None:
        raise ValueError("the mask is empty, there is no object to cut out")
    return box


def _check(image: np.ndarray, mask: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 image, got {image.dtype} {image.shape}")
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match image shape {image.shape[:2]}")


def cutout_box(mask: np.ndarray, margin: float = CUTOUT_MARGIN) -> tuple[int, int, int, int]:
    """The object's box grown by ``margin`` x its longer side on every side, clipped to the image (x1/y1 exclusive)."""
    x0, y0, x1, y1 = _box(mask)
    pad = round(max(0.0, margin) * max(x1 - x0, y1 - y0))
    height, width = mask.shape
    return max(0, x0 - pad), max(0, y0 - pad), min(width, x1 + pad), min(height, y1 + pad)


def _alpha(image: np.ndarray, mask: np.ndarray, soft: bool) -> np.ndarray:
    """The object's alpha in [0, 1]: the mask, or with ``soft`` its edges anti-aliased along the photo's."""
    return soft_alpha(image, mask) if soft else mask.astype(np.float32)


def cutout(image: np.ndarray, mask: np.ndarray, margin: float = CUTOUT_MARGIN, soft: bool = True) -> np.ndarray:
    """An RGBA crop of the object, cropped to :func:`cutout_box`: alpha 255 on the mask and 0 elsewhere, with
    ``soft`` edges (:func:`persam.edges.soft_alpha`: partial alpha along the outline, >= 128 exactly on
    the mask)."""
    mask = np.asarray(mask, dtype=bool)
    _check(image, mask)
    x0, y0, x1, y1 = cutout_box(mask, margin)
    out = np.empty((y1 - y0, x1 - x0, 4), dtype=np.uint8)
    out[:, :, :3] = image[y0:y1, x0:x1]
    out[:, :, 3] = np.rint(_alpha(image, mask, soft)[y0:y1, x0:x1] * 255)
    return out


def square_window(
    mask: np.ndarray, margin: float = CROP_MARGIN, *, inside_image: bool = False
) -> tuple[int, int, int]:
    """(x0, y0, side) of a square centred on the object's box, ``margin`` x its longer side clear around it.

    The window may reach past the image (the caller pads). With ``inside_image`` it is shrunk and shifted
    to stay within the image as far as possible while still holding the whole object, so that only real
    pixels are shown; the object is then not always centred.
    """
    x0, y0, x1, y1 = _box(mask)
    w, h = x1 - x0, y1 - y0
    longest = max(w, h)
    side = max(longest + 2, math.ceil(longest * (1 + 2 * max(0.0, margin))))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    if inside_image:
        height, width = mask.shape
        side = max(longest, min(side, width, height))
    sx, sy = math.floor(cx - side / 2 + 0.5), math.floor(cy - side / 2 + 0.5)
    if inside_image:
        height, width = mask.shape
        sx = min(max(sx, 0), max(0, width - side)) if side <= width else sx
        sy = min(max(sy, 0), max(0, height - side)) if side <= height else sy
        sx, sy = min(sx, x0), min(sy, y0)  # never cut the object
        sx, sy = max(sx, x1 - side), max(sy, y1 - side)
    return sx, sy, side


def dreambooth_crop(
    image: np.ndarray,
    mask: np.ndarray,
    size: int = 512,
    background: str = "white",
    margin: float = CROP_MARGIN,
    soft: bool = True,
) -> np.ndarray:
    """A ``size`` x ``size`` crop for fine-tuning: the object centred and whole, resized with Lanczos
    (``soft``: its alpha anti-aliased along the photo's edges, as for :func:`cutout`).

    ``background``: "white" (RGB, everything but the object white), "transparent" (RGBA, alpha = mask,
    white under the transparent part) or "keep" (RGB, the photo as it is; the square stays inside the
    photo where it can, so the object may sit off-centre). Where the square reaches past the photo the
    padding is white (transparent for "transparent").
    """
    if background not in BACKGROUNDS:
        raise ValueError(f"background must be one of {', '.join(BACKGROUNDS)}, not {background!r}")
    if size < 1:
        raise ValueError(f"size must be positive, not {size}")
    mask = np.asarray(mask, dtype=bool)
    _check(image, mask)
    keep = background == "keep"
    sx, sy, side = square_window(mask, margin, inside_image=keep)
    height, width = mask.shape
    ix0, iy0, ix1, iy1 = max(sx, 0), max(sy, 0), min(sx + side, width), min(sy + side, height)
    window = (slice(iy0 - sy, iy1 - sy), slice(ix0 - sx, ix1 - sx))
    pixels = np.full((side, side, 3), WHITE, dtype=np.uint8)  # white where the square leaves the photo
    pixels[window] = image[iy0:iy1, ix0:ix1]
    rgb = Image.fromarray(pixels, mode="RGB")
    if side != size:
        rgb = rgb.resize((size, size), Image.Resampling.LANCZOS)
    if keep:
        return np.asarray(rgb).copy()
    # The mask is resized as a soft (float) alpha with the same filter, then the photo is blended over
    # white by it: edges come out smooth whether the object is shrunk or enlarged.
    alpha = np.zeros((side, side), dtype=np.float32)
    alpha[window] = _alpha(image, mask, soft)[iy0:iy1, ix0:ix1]
    if side != size:
        alpha = np.asarray(Image.fromarray(alpha, mode="F").resize((size, size), Image.Resampling.LANCZOS))
    alpha = np.clip(alpha, 0.0, 1.0)[:, :, None]
    if background == "white":
        out = np.asarray(rgb, dtype=np.float32) * alpha + WHITE * (1.0 - alpha)
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    a8 = np.rint(alpha[:, :, 0] * 255).astype(np.uint8)
    colour = np.where(a8[:, :, None] > 0, np.asarray(rgb), WHITE).astype(np.uint8)  # not blended: no halo
    return np.dstack([colour, a8])


def save_png(path: str | os.PathLike, pixels: np.ndarray) -> None:
    """Write an RGB or RGBA array as a PNG, atomically."""
    im = Image.fromarray(pixels, mode="RGBA" if pixels.shape[2] == 4 else "RGB")
    atomic_write(path, lambda f: im.save(f, format="PNG"))


def safe_name(text: str) -> str:
    """A folder/file name from a concept name: letters, digits, '-', '_' and '.' kept, the rest '_'."""
    name = re.sub(r"[^\w.-]+", "_", text.strip(), flags=re.UNICODE).strip("._")
    return name[:100] or "object"


def cutout_path(photo: Photo, inst: Instance, n_instances: int) -> str:
    """``cutouts/<stem>.png``, or ``cutouts/<stem>_<id>.png`` when the photo has several instances."""
    suffix = f"_{inst.id}" if n_instances > 1 else ""
    return f"cutouts/{photo.stem}{suffix}.png"


def dreambooth_path(photo: Photo, inst: Instance, n_instances: int) -> str:
    """``dreambooth/<concept>/<stem with '/' as '__'>[_<id>].png``: flat, one folder per concept."""
    suffix = f"_{inst.id}" if n_instances > 1 else ""
    flat = "__".join(part for part in photo.stem.split("/") if part)
    return f"dreambooth/{safe_name(inst.concept)}/{flat}{suffix}.png"


def write_photo_cutouts(
    out_dir: Path, photo: Photo, image: np.ndarray, labels: np.ndarray, instances: list[Instance], soft: bool = True
) -> list[str]:
    """Write the cut-outs of one photo; returns their paths relative to ``out_dir``."""
    written = []
    for inst in instances:
        rel = cutout_path(photo, inst, len(instances))
        save_png(out_dir / rel, cutout(image, labels == inst.id, soft=soft))
        written.append(rel)
    return written


def write_photo_crops(
    out_dir: Path,
    photo: Photo,
    image: np.ndarray,
    labels: np.ndarray,
    instances: list[Instance],
    *,
    size: int = 512,
    background: str = "white",
    soft: bool = True,
) -> list[str]:
    """Write the DreamBooth crops of one photo; returns their paths relative to ``out_dir``."""
    written = []
    for inst in instances:
        rel = dreambooth_path(photo, inst, len(instances))
        save_png(out_dir / rel, dreambooth_crop(image, labels == inst.id, size, background, soft=soft))
        written.append(rel)
    return written


def write_cutouts(out_dir: str | os.PathLike, **options) -> Path:
    """Cut-outs of every present instance of the run in ``out_dir``, into ``out_dir/cutouts/``."""
    from . import write_exports

    return write_exports(out_dir, ["cutouts"], **options)["cutouts"]


def write_dreambooth(out_dir: str | os.PathLike, size: int = 512, background: str = "white", **options) -> Path:
    """DreamBooth crops of every present instance of the run in ``out_dir``, into ``out_dir/dreambooth/``."""
    from . import write_exports

    return write_exports(out_dir, ["dreambooth"], dreambooth_size=size, background=background, **options)[
        "dreambooth"
    ]
