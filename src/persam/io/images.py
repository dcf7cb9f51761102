"""Images in: every photo a user hands to persam becomes an upright HxWx3 uint8 RGB array, or a one-line error."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from .common import ImageSource, _check_size, _fail, _open_path, _pil_image, _short_reason, source_name

#: Suffixes (lowercase) that :func:`persam.io.find_images` picks up when walking a folder.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})


def _to_uint8(values: np.ndarray, name: str) -> np.ndarray:
    """Scale one array of pixel values to uint8 by its type's range (16-bit >> 8, float 0..1 * 255)."""
    kind = values.dtype.kind
    if values.dtype == np.uint8:
        return values
    if kind == "b":
        return values.astype(np.uint8) * np.uint8(255)
    if kind == "u" and values.dtype.itemsize == 2:
        return (values.astype(np.uint16) >> 8).astype(np.uint8)
    if kind == "f":
        data = np.nan_to_num(values.astype(np.float32), nan=0.0, posinf=255.0, neginf=0.0)
        if data.size and data.max() <= 1.0:
            data = np.clip(data, 0.0, 1.0) * 255.0
        return np.clip(np.rint(data), 0, 255).astype(np.uint8)
    if kind in "iu":
        lo, hi = (int(values.min()), int(values.max())) if values.size else (0, 0)
        if lo >= 0 and hi <= 255:
            return values.astype(np.uint8)
        if lo >= 0 and hi <= 65535:  # e.g. a 16-bit image widened to int32 (Pillow mode "I")
            return (values.astype(np.uint32) >> 8).astype(np.uint8)
        raise _fail(name, f"integer pixel values {lo}..{hi} are outside 0..65535 (dtype {values.dtype})")
    raise _fail(name, f"unsupported pixel type {values.dtype} (use uint8, uint16, bool or float)")


def _array_to_rgb(arr: np.ndarray, name: str) -> np.ndarray:
    """HxW / HxWx1 / HxWx3 / HxWx4 array of any supported dtype -> contiguous HxWx3 uint8."""
    if arr.ndim == 3 and arr.shape[2] in (1, 3, 4):
        channels = arr.shape[2]
    elif arr.ndim == 2:
        channels = 0
    else:
        raise _fail(name, f"shape {tuple(arr.shape)} is not an image (expected HxW, HxWx1, HxWx3 or HxWx4)")
    _check_size(arr.shape[1], arr.shape[0], name)
    if channels == 4:
        arr = arr[:, :, :3]
    elif channels == 1:
        arr = arr[:, :, 0]
    arr = _to_uint8(np.asarray(arr), name)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    return np.ascontiguousarray(arr)


def _pil_to_rgb(im: Image.Image, name: str) -> np.ndarray:
    """Any Pillow mode -> HxWx3 uint8, scaling high bit depths instead of clipping them."""
    _check_size(im.width, im.height, name)
    mode = im.mode
    if mode == "I":  # 32-bit integers, in practice 16-bit data (PNG/TIFF): keep the top 8 of 16 bits
        data = np.clip(np.asarray(im), 0, 65535).astype(np.uint16)
        return _array_to_rgb(data, name)
    if mode.startswith("I;16") or mode == "F":
        return _array_to_rgb(np.asarray(im), name)
    if mode in ("P", "PA") and "transparency" in im.info:
        im = im.convert("RGBA")  # going through RGBA avoids Pillow's warning for byte transparency
    try:
        rgb = im.convert("RGB") if im.mode != "RGB" else im
    except ValueError as exc:
        raise _fail(name, f"unsupported image mode {mode} ({_short_reason(exc, name)})") from exc
    return np.asarray(rgb, dtype=np.uint8).copy()


def load_image(src: ImageSource, *, name: str | None = None) -> np.ndarray:
    """Load an image as an HxWx3 uint8 RGB array, the one form the model code accepts.

    ``src`` is a path, a PIL image or an array (HxW, HxWx1, HxWx3 or HxWx4 of uint8, uint16, bool or
    float in 0..1). Files are fully decoded here, so corrupt or truncated ones fail now with a one-line
    :class:`InputError` naming the file; EXIF orientation is applied so that the array is upright as
    viewers show it. Alpha is dropped; 16-bit data keeps its top 8 bits. A uint8 HxWx3 array is returned
    as is (no copy). ``name`` overrides the name used in error messages.
    """
    if isinstance(src, np.ndarray):
        return _array_to_rgb(src, source_name(src, name, "array"))
    if isinstance(src, Image.Image):
        label = source_name(src, name, "image")
        return _pil_to_rgb(_pil_image(src, label), label)
    if isinstance(src, (str, os.PathLike)):
        label = source_name(src, name, "image")
        return _pil_to_rgb(_open_path(src, label), label)
    raise TypeError(f"load_image expects a path, PIL image or numpy array, not {type(src).__name__}")
