"""Masks in, read by value: palette, 0/1, 0/255, alpha cut-outs and label maps all mean what the user meant."""

from __future__ import annotations

import os
import warnings

import numpy as np
from PIL import Image

from ..errors import InputError
from ..notices import PersamWarning
from .common import ImageSource, _check_size, _fail, _open_path, _pil_image, _short_reason, source_name

_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
# Colour spaces whose channel values are not brightness: shown/measured after conversion to RGB.
_COLOUR_SPACE_MODES = {"CMYK", "YCbCr", "LAB", "HSV"}


def _binarize(values: np.ndarray) -> np.ndarray:
    """Object pixels of a one-channel mask, decided by value (never through a colour transform).

    One value: non-zero means everything is the object, zero means empty. Two values (0/1, 0/255, 0/k
    label masks): the larger one is the object. More values (anti-aliased or JPEG-compressed masks,
    16-bit masks): above halfway between the smallest and largest value.
    """
    if values.dtype == bool:
        return values.copy()
    if values.dtype.kind == "f":
        values = np.nan_to_num(values, nan=0.0)
    if values.size == 0:
        return np.zeros(values.shape, dtype=bool)
    lo, hi = values.min(), values.max()
    if lo == hi:
        return np.full(values.shape, bool(lo != 0))
    if not ((values != lo) & (values != hi)).any():
        return values > lo
    if values.dtype.kind in "iu":  # for integers, v > (lo + hi) / 2 exactly when v > floor of it
        return values > (int(lo) + int(hi)) // 2
    return values > (float(lo) + float(hi)) / 2


def _mask_from_array(arr: np.ndarray, name: str) -> np.ndarray:
    """HxW / HxWx1 / HxWx3 / HxWx4 array -> HxW bool by the rules of :func:`load_mask`."""
    if arr.ndim == 3 and arr.shape[2] in (1, 2, 3, 4):
        channels = arr.shape[2]
    elif arr.ndim == 2:
        channels = 0
    else:
        raise _fail(name, f"shape {tuple(arr.shape)} is not a mask (expected HxW or HxWx1..4)")
    _check_size(arr.shape[1], arr.shape[0], name)
    if arr.dtype.kind not in "buif":
        raise _fail(name, f"unsupported mask type {arr.dtype} (use bool, integers or floats)")
    if channels in (2, 4):
        alpha = arr[:, :, -1]
        if alpha.size and alpha.min() != alpha.max():
            return _binarize(alpha)
        arr = arr[:, :, :-1]
    if arr.ndim == 3:
        arr = arr.max(axis=2)
    return _binarize(arr)


def _mask_from_pil(im: Image.Image, name: str) -> np.ndarray:
    _check_size(im.width, im.height, name)
    mode = im.mode
    if mode in ("P", "PA"):
        data = np.asarray(im)
        if mode == "PA":
            alpha = data[:, :, 1]
            if alpha.min() != alpha.max():
                return _binarize(alpha)
            data = data[:, :, 0]
        return data > 0
    if mode in _ALPHA_MODES:
        alpha = np.asarray(im)[:, :, -1]
        if alpha.min() != alpha.max():
            return _binarize(alpha)
        im = im.convert("L" if mode in ("LA", "La") else "RGB")
    elif mode in _COLOUR_SPACE_MODES:
        try:
            im = im.convert("RGB")
        except ValueError as exc:
            raise _fail(name, f"unsupported mask mode {mode} ({_short_reason(exc, name)})") from exc
    data = np.asarray(im)
    if data.dtype.byteorder not in ("=", "|"):
        data = data.astype(data.dtype.newbyteorder("="))
    if data.ndim == 3:
        data = data.max(axis=2)
    return _binarize(data)


def _same_aspect(mask_wh: tuple[int, int], image_wh: tuple[int, int]) -> bool:
    """True when scaling the mask to the image's width gives its height within one pixel, and back."""
    (mw, mh), (iw, ih) = mask_wh, image_wh
    return abs(mh * iw / mw - ih) <= 1.0 and abs(mw * ih / mh - iw) <= 1.0


def load_mask(
    src: ImageSource, size: tuple[int, int] | None = None, *, name: str | None = None
) -> np.ndarray:
    """Load an object mask as an HxW bool array (True = object), reading pixel values as they are.

    Masks come in many encodings; none is put through a colour transform (a 0/1 mask looks black but
    is a valid mask). Palette images: index > 0. A non-constant alpha channel (a cut-out saved from an
    image editor): alpha above half (for 0/255 alpha, any alpha). Otherwise the channels' maximum, where
    one or two distinct values mean "non-zero / the larger value is the object" (0/1, 0/255, 0/k label
    masks) and more values (anti-aliased, JPEG, 16-bit) are cut halfway between the smallest and the
    largest. EXIF orientation is applied, as for images, so both stay aligned.

    ``size`` is the (width, height) of the image the mask belongs to: a mask of the same aspect ratio is
    resized (nearest neighbour, with a warning); any other size is an :class:`InputError`. ``name``
    overrides the name used in messages. An all-zero mask is returned empty; callers decide whether
    that is an error (``not mask.any()``).
    """
    if isinstance(src, np.ndarray):
        label = source_name(src, name, "array")
        mask = _mask_from_array(src, label)
    elif isinstance(src, Image.Image):
        label = source_name(src, name, "mask")
        mask = _mask_from_pil(_pil_image(src, label), label)
    elif isinstance(src, (str, os.PathLike)):
        label = source_name(src, name, "mask")
        mask = _mask_from_pil(_open_path(src, label), label)
    else:
        raise TypeError(f"load_mask expects a path, PIL image or numpy array, not {type(src).__name__}")

    if size is not None:
        width, height = int(size[0]), int(size[1])
        mh, mw = mask.shape
        if (mw, mh) != (width, height):
            if not _same_aspect((mw, mh), (width, height)):
                hint = (
                    " (rotated? check the EXIF orientation of both files)"
                    if (mw, mh) == (height, width)
                    else ""
                )
                raise _fail(label, f"mask is {mw}x{mh} but the image is {width}x{height}{hint}")
            warnings.warn(
                f"{label}: mask is {mw}x{mh} but the image is {width}x{height}; resized it to match",
                PersamWarning,
                stacklevel=2,
            )
            small = Image.fromarray(mask.astype(np.uint8) * np.uint8(255), mode="L")
            mask = np.asarray(small.resize((width, height), Image.Resampling.NEAREST)) > 0
    return np.ascontiguousarray(mask, dtype=bool)


def load_reference_mask(src: ImageSource, image: np.ndarray, *, name: str | None = None) -> np.ndarray:
    """:func:`load_mask` for a reference: at ``image``'s size, and an empty mask is an error (nothing to learn)."""
    label = source_name(src, name, "reference mask")
    mask = load_mask(src, (image.shape[1], image.shape[0]), name=label)
    if not mask.any():
        raise InputError(f"{label}: the mask is empty, there is no object to personalize")
    if mask.all():
        warnings.warn(f"{label}: the mask covers the whole image, so the whole photo is learnt as the object",
                      PersamWarning, stacklevel=2)
    return mask


VOID_ID = 255  # DAVIS: "void" pixels (object borders, ignored by the evaluation), not an object


def load_object_masks(src: ImageSource, image: np.ndarray, *, name: str | None = None) -> list[tuple[int, np.ndarray]]:
    """Reference objects of one frame as ``[(id, mask), ...]``, sorted by id, each mask non-empty.

    A palette PNG (or an integer array) holding two or more object ids -- a DAVIS annotation -- gives one
    object per id (255 is DAVIS's "void" and is ignored). Any other mask is one object with id 1, read by
    the rules of :func:`load_mask`. The mask must fit ``image`` as in :func:`load_reference_mask`.
    """
    label = source_name(src, name, "reference mask")
    ids_map = None
    if isinstance(src, (str, os.PathLike, Image.Image)):
        im = _open_path(src, label) if not isinstance(src, Image.Image) else _pil_image(src, label)
        if im.mode == "P":
            ids_map = np.asarray(im)
    elif isinstance(src, np.ndarray) and src.ndim == 2 and src.dtype.kind in "iu":
        ids_map = src
    if ids_map is not None:
        ids = [int(v) for v in np.unique(ids_map) if v != 0 and v != VOID_ID]
        if len(ids) >= 2:
            if max(ids) > 254:
                raise _fail(label, f"object id {max(ids)} is out of range (ids are 1..254; 255 is void)")
            h, w = image.shape[:2]
            if ids_map.shape != (h, w):
                raise _fail(label, f"mask is {ids_map.shape[1]}x{ids_map.shape[0]} but the image is {w}x{h}")
            return [(i, ids_map == i) for i in ids]
    return [(1, load_reference_mask(src, image, name=label))]
