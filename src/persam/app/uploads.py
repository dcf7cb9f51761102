"""Uploaded files, checked by their content (never by their name) before anything else reads them.

A photo must be an image Pillow identifies as JPEG, PNG, WebP, BMP or TIFF, with at most ``max_pixels``
pixels: the size is read from the header, before decoding, so a decompression bomb is refused without being
expanded. A video must be a container PyAV opens with a video stream. A concept must be a persam concept
file. Every refusal is an :class:`UploadError` carrying the HTTP status and one line for the user.
"""

from __future__ import annotations

import asyncio
import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import PersamError

if TYPE_CHECKING:
    from fastapi import UploadFile

    from .config import AppConfig

#: Pillow format -> the suffix a saved copy gets (the user's own suffix is never used).
IMAGE_FORMATS = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif"}
#: PyAV container format (first name of its list) -> suffix of the saved copy.
VIDEO_FORMATS = {"mov": ".mp4", "matroska": ".mkv", "avi": ".avi", "gif": ".gif", "mpeg": ".mpg", "webm": ".webm"}


class UploadError(PersamError):
    """An upload refused: ``status`` is the HTTP status (413 too large, 415 wrong type, 422 unusable)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def display_name(name: str | None, default: str = "photo") -> str:
    """The user's file name for display only: its last component, printable, at most 80 characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip()
    return base[:80] or default


def safe_stem(name: str | None, default: str = "photo") -> str:
    """A file name stem made by the server from the user's name: letters, digits, '-' and '_' only."""
    stem = Path(display_name(name, default)).stem
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_-")[:60]
    return stem or default


@dataclass
class CheckedImage:
    """An uploaded photo that passed the checks: its bytes, suffix, size and decoded RGB pixels."""

    data: bytes
    suffix: str
    width: int
    height: int
    rgb: np.ndarray


def check_size(data: bytes, limit: int, name: str) -> None:
    if len(data) > limit:
        raise UploadError(413, f"{name}: the file is too large ({len(data) / 2**20:.1f} MB; at most "
                               f"{limit // 2**20} MB)")
    if not data:
        raise UploadError(422, f"{name}: the file is empty")


async def read_upload(upload: UploadFile, limit: int) -> bytes:
    """At most ``limit`` + 1 bytes of an upload (one more than allowed is enough to refuse it)."""
    data = await upload.read(limit + 1)
    check_size(data, limit, display_name(upload.filename, "file"))
    return data


async def read_image_upload(upload: UploadFile, name: str, config: AppConfig) -> tuple[bytes, CheckedImage]:
    """An uploaded photo's bytes, read within the size limit, and the photo they decode to, checked (off the
    event loop); every route that takes a photo goes through here."""
    data = await read_upload(upload, config.max_upload_bytes)
    img = await asyncio.to_thread(check_image, data, name, max_bytes=config.max_upload_bytes,
                                  max_pixels=config.max_pixels)
    return data, img


KINDS = "JPEG, PNG, WebP, BMP or TIFF"


def identify(data: bytes, name: str, *, max_bytes: int, max_pixels: int) -> tuple[str, int, int]:
    """(format, width, height) read from the header only; too large, too many pixels or not an image: refused."""
    check_size(data, max_bytes, name)
    kinds = KINDS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                fmt, (width, height) = im.format, im.size
    except Image.DecompressionBombError:
        raise UploadError(413, f"{name}: too many pixels (refused as a possible decompression bomb)") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        raise UploadError(415, f"{name}: not a photo this app can read ({kinds})") from None
    if fmt not in IMAGE_FORMATS:
        raise UploadError(415, f"{name}: {fmt} images are not accepted ({kinds})")
    if width * height > max_pixels:
        raise UploadError(413, f"{name}: too many pixels ({width}x{height}; at most {max_pixels / 1e6:.0f} "
                               "megapixels)")
    return fmt, width, height


def check_image(data: bytes, name: str, *, max_bytes: int, max_pixels: int) -> CheckedImage:
    """Identify by content, refuse too many pixels before decoding, then decode fully (EXIF upright)."""
    from ..io import load_image

    fmt, _, _ = identify(data, name, max_bytes=max_bytes, max_pixels=max_pixels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            rgb = load_image(Image.open(io.BytesIO(data)), name=name)
        except PersamError as exc:
            raise UploadError(422, str(exc)) from None
    return CheckedImage(data, IMAGE_FORMATS[fmt], rgb.shape[1], rgb.shape[0], rgb)


def check_mask(data: bytes, name: str, image: np.ndarray, *, max_bytes: int, max_pixels: int) -> np.ndarray:
    """A reference mask upload (any image; non-zero = object) as a bool mask at ``image``'s size."""
    from ..io import load_reference_mask

    identify(data, name, max_bytes=max_bytes, max_pixels=max_pixels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return load_reference_mask(Image.open(io.BytesIO(data)), image, name=name)
        except PersamError as exc:
            raise UploadError(422, str(exc)) from None


@dataclass
class CheckedVideo:
    suffix: str
    width: int
    height: int


def check_video(path: Path, name: str, *, max_pixels: int) -> CheckedVideo:
    """A saved upload that PyAV opens as a video with frames of at most ``max_pixels`` pixels."""
    import av

    try:
        with av.open(str(path)) as container:
            fmt = container.format.name.split(",")[0]
            if not container.streams.video:
                raise UploadError(415, f"{name}: no video in this file")
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
    except UploadError:
        raise
    except (av.FFmpegError, OSError, ValueError, IndexError, UnicodeDecodeError):
        raise UploadError(415, f"{name}: not a video this app can read (mp4, mov, webm, mkv, avi)") from None
    suffix = VIDEO_FORMATS.get(fmt)
    if suffix is None:
        raise UploadError(415, f"{name}: {fmt} files are not accepted as videos (mp4, mov, webm, mkv, avi)")
    if width * height > max_pixels or width <= 0 or height <= 0:
        raise UploadError(413, f"{name}: the video's frames are too large ({width}x{height})")
    return CheckedVideo(suffix, width, height)


def parse_points(text: str | None) -> list[tuple[float, float, int]]:
    """``[[x, y, label], ...]`` (label 1 object, 0 background; ``[x, y]`` means 1) from JSON text."""
    import json

    if text is None or not text.strip():
        return []
    try:
        value = json.loads(text)
    except ValueError:
        raise UploadError(422, "points: not JSON (expected [[x, y, label], ...])") from None
    return points_from(value)


def points_from(value: object) -> list[tuple[float, float, int]]:
    """Validated clicks from already parsed JSON."""
    if not isinstance(value, list) or len(value) > 64:
        raise UploadError(422, "points: expected a list of at most 64 [x, y, label] clicks")
    out = []
    for p in value:
        if not isinstance(p, list) or len(p) not in (2, 3) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in p):
            raise UploadError(422, "points: every click is [x, y, label] with numbers (label 1 object, 0 background)")
        label = int(p[2]) if len(p) == 3 else 1
        if label not in (0, 1):
            raise UploadError(422, "points: a click's label is 1 (object) or 0 (background)")
        out.append((float(p[0]), float(p[1]), label))
    return out


def parse_box(text: str | None) -> tuple[float, float, float, float] | None:
    import json

    if text is None or not text.strip():
        return None
    try:
        value = json.loads(text)
    except ValueError:
        raise UploadError(422, "box: not JSON (expected [x0, y0, x1, y1])") from None
    return box_from(value)


def box_from(value: object) -> tuple[float, float, float, float] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 4 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in value):
        raise UploadError(422, "box: expected [x0, y0, x1, y1] (pixels)")
    x0, y0, x1, y1 = (float(v) for v in value)
    if x1 <= x0 or y1 <= y0:
        raise UploadError(422, "box: x1 must be greater than x0 and y1 greater than y0")
    return x0, y0, x1, y1
