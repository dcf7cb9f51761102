"""What every reader shares: one-line errors naming the file, and opening image files safely."""

from __future__ import annotations

import os
import warnings
from contextlib import suppress
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import InputError
from ..notices import PersamWarning

ImageSource = str | os.PathLike | Image.Image | np.ndarray

# What Pillow raises for unreadable, corrupt, truncated or hostile files.
_READ_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    TypeError,
    IndexError,
    KeyError,
    EOFError,
    MemoryError,
    Image.DecompressionBombError,
)


def _fail(name: str, problem: str) -> InputError:
    """An InputError whose message is one line: '<name>: <problem>'."""
    message = f"{name}: {problem}"
    return InputError(" ".join(message.splitlines()))


def _short_reason(exc: BaseException, path: str) -> str:
    """A short, one-line reason from a Pillow/OS exception, without repeating the (long) path."""
    if isinstance(exc, UnidentifiedImageError):
        return "cannot identify image file"
    if isinstance(exc, Image.DecompressionBombError):
        return "too many pixels, refused as a possible decompression bomb"
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    for form in (repr(path), f"'{path}'", path):
        text = text.replace(form, "")
    text = " ".join(text.split()).strip(" :") or type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def source_name(src: object, name: str | None, default: str) -> str:
    """The name to use in messages: the caller's, else the path, else the PIL filename, else ``default``."""
    if name:
        return name
    if isinstance(src, (str, os.PathLike)):
        return os.fspath(src)
    if isinstance(src, Image.Image):
        return getattr(src, "filename", "") or default
    return default


def _open_path(path: str | os.PathLike, name: str) -> Image.Image:
    """Open, fully decode and EXIF-orient an image file; every failure becomes a one-line InputError."""
    p = Path(path)
    if not p.exists():
        raise _fail(name, "file not found")
    if p.is_dir():
        raise _fail(name, "is a folder, not an image file")
    with suppress(OSError):
        if p.stat().st_size == 0:
            raise _fail(name, "not a readable image (the file is empty)")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", Image.DecompressionBombWarning)
            with Image.open(p) as im:
                im.load()  # decode everything now so truncated files fail here, not later
                out = _exif_oriented(im)
        for w in caught:  # Pillow's own warnings do not say which file: say it, in one line
            if issubclass(w.category, Image.DecompressionBombWarning):
                warnings.warn(f"{name}: very large image ({out.width}x{out.height} pixels); reading it anyway",
                              PersamWarning, stacklevel=3)
            else:
                warnings.warn(f"{name}: {' '.join(str(w.message).split())}", PersamWarning, stacklevel=3)
        return out
    except _READ_ERRORS as exc:
        raise _fail(name, f"not a readable image ({_short_reason(exc, os.fspath(path))})") from exc


def _exif_oriented(im: Image.Image) -> Image.Image:
    """The image as it is meant to be seen (EXIF orientation applied); always a new, loaded image."""
    out = ImageOps.exif_transpose(im)
    if out is None or out is im:
        out = im.copy()
    return out


def _pil_image(src: Image.Image, name: str) -> Image.Image:
    """A user-supplied PIL image, decoded and EXIF-oriented (lazily opened images may still fail here)."""
    try:
        src.load()
        return _exif_oriented(src)
    except _READ_ERRORS as exc:
        raise _fail(name, f"not a readable image ({_short_reason(exc, name)})") from exc


def _check_size(width: int, height: int, name: str) -> None:
    if width <= 0 or height <= 0:
        raise _fail(name, f"image is empty ({width}x{height} pixels)")
