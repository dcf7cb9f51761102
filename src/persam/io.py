"""Reading images and masks, finding input files, and writing outputs safely.

Everything a user hands to persam goes through :func:`load_image` / :func:`load_mask`, so that odd files
(EXIF-rotated photos, 16-bit PNGs, palette masks, 0/1 masks, cut-outs with alpha) behave as the user
expects and broken ones fail with a one-line :class:`~persam.errors.InputError` naming the file instead of
a traceback. Outputs are written atomically so that an interrupted run never leaves half-written files.
"""

from __future__ import annotations

import json
import os
import secrets
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any, BinaryIO

import numpy as np
from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

from .errors import InputError, PersamError

ImageSource = str | os.PathLike | Image.Image | np.ndarray

#: Suffixes (lowercase) that :func:`find_images` picks up when walking a folder.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})

_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
# Colour spaces whose channel values are not brightness: shown/measured after conversion to RGB.
_COLOUR_SPACE_MODES = {"CMYK", "YCbCr", "LAB", "HSV"}
_SAVE_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}
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


# ------------------------------------------------------------------------------------------ helpers
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
        with Image.open(p) as im:
            im.load()  # decode everything now so truncated files fail here, not later
            return _exif_oriented(im)
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


# --------------------------------------------------------------------------------------- reading
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
                stacklevel=2,
            )
            small = Image.fromarray(mask.astype(np.uint8) * np.uint8(255), mode="L")
            mask = np.asarray(small.resize((width, height), Image.Resampling.NEAREST)) > 0
    return np.ascontiguousarray(mask, dtype=bool)


# ------------------------------------------------------------------------------------ finding files
def load_reference_mask(src: ImageSource, image: np.ndarray, *, name: str | None = None) -> np.ndarray:
    """:func:`load_mask` for a reference: at ``image``'s size, and an empty mask is an error (nothing to learn)."""
    label = source_name(src, name, "reference mask")
    mask = load_mask(src, (image.shape[1], image.shape[0]), name=label)
    if not mask.any():
        raise InputError(f"{label}: the mask is empty, there is no object to personalize")
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


def find_images(paths: Iterable[str | os.PathLike]) -> list[tuple[Path, Path]]:
    """Expand the user's targets into ``(absolute image path, relative output path)`` pairs.

    A folder is walked recursively in sorted order, skipping hidden files and folders (names starting
    with "."), keeping files whose suffix is in :data:`IMAGE_EXTENSIONS` (any case); the relative path
    is the file's path inside that folder, so outputs can mirror its structure. A file named explicitly
    is kept whatever its suffix (a non-image then fails clearly in :func:`load_image`) and gets its bare
    name. The same file reached twice is listed once, first occurrence kept. A missing path is an
    :class:`InputError`; a folder without images simply contributes nothing.
    """
    found: list[tuple[Path, Path]] = []
    seen: set[Path] = set()

    def add(file: Path, rel: Path) -> None:
        key = file.resolve()
        if key not in seen:
            seen.add(key)
            found.append((Path(os.path.abspath(file)), rel))

    for target in paths:
        root = Path(target)
        if root.is_dir():
            for file in _walk_images(root):
                add(file, file.relative_to(root))
        elif root.exists():
            add(root, Path(root.name))
        else:
            raise _fail(os.fspath(target), "no such file or folder")
    return found


def _walk_images(root: Path) -> Iterator[Path]:
    for folder, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for filename in sorted(filenames):
            if not filename.startswith(".") and Path(filename).suffix.lower() in IMAGE_EXTENSIONS:
                yield Path(folder) / filename


# ------------------------------------------------------------------------------------------ writing
@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open ``path`` for writing so that it appears complete or not at all.

    Data goes to a hidden temporary file in the same folder (``.<name>.<random>.tmp``) that replaces
    ``path`` only when the ``with`` block ends without an exception; on any exception (including
    KeyboardInterrupt) the temporary file is removed and an existing ``path`` is left untouched. Parent
    folders are created. ``mode`` is "wb" or "w" (UTF-8 text). OS errors (disk full, no permission)
    become a one-line :class:`PersamError` naming ``path``.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open mode must be 'wb' or 'w', not {mode!r}")
    target = Path(path)
    tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle = open(tmp, "xb") if mode == "wb" else open(tmp, "x", encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        raise PersamError(f"{target}: cannot write ({_short_reason(exc, os.fspath(tmp))})") from exc
    try:
        try:
            with handle:
                yield handle
            os.replace(tmp, target)
        except OSError as exc:
            raise PersamError(f"{target}: cannot write ({_short_reason(exc, os.fspath(tmp))})") from exc
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write(path: str | os.PathLike, writer: Callable[[BinaryIO], None]) -> None:
    """Call ``writer`` with a binary file whose content becomes ``path`` only if it returns normally."""
    with atomic_open(path, "wb") as handle:
        writer(handle)


def save_mask(path: str | os.PathLike, mask: np.ndarray) -> None:
    """Write a mask as an 8-bit greyscale PNG, 255 = object, 0 = background (what tools expect)."""
    data = np.asarray(mask)
    if data.ndim != 2:
        raise ValueError(f"save_mask expects an HxW mask, got shape {data.shape}")
    img = Image.fromarray(np.where(data > 0, 255, 0).astype(np.uint8), mode="L")
    atomic_write(path, lambda f: img.save(f, format="PNG"))


def save_image(path: str | os.PathLike, rgb: np.ndarray, quality: int = 90) -> None:
    """Write an RGB image; the format follows the suffix (.jpg/.jpeg: JPEG at ``quality``, .png: PNG)."""
    suffix = Path(path).suffix.lower()
    fmt = _SAVE_FORMATS.get(suffix)
    if fmt is None:
        raise PersamError(
            f"{path}: cannot save images as '{suffix or 'no suffix'}' (use .jpg, .jpeg or .png)"
        )
    img = Image.fromarray(_array_to_rgb(np.asarray(rgb), "image to save"), mode="RGB")
    options = {"quality": int(quality)} if fmt == "JPEG" else {}
    atomic_write(path, lambda f: img.save(f, format=fmt, **options))


def _json_default(obj: Any) -> Any:
    """Make numpy scalars/arrays and paths JSON-serialisable in records."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """Append one record as one JSON line, so that a crash loses at most the line being written.

    The line is written with a single ``write`` call and flushed. If the file ends in a partial line
    (an earlier crash), a newline is written first so the new record stays readable. Numpy values
    and paths are converted.
    """
    line = json.dumps(record, ensure_ascii=False, default=_json_default).encode("utf-8") + b"\n"
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "a+b") as handle:
            handle.seek(0, os.SEEK_END)
            if handle.tell() > 0:
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":
                    line = b"\n" + line
            handle.write(line)
            handle.flush()
    except OSError as exc:
        raise PersamError(f"{target}: cannot write ({_short_reason(exc, os.fspath(target))})") from exc


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read records written by :func:`append_jsonl`; a missing file is empty.

    Lines that are not a complete JSON object (the partial last line of an interrupted run) are skipped
    rather than stopping a resumed run.
    """
    target = Path(path)
    try:
        data = target.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise PersamError(f"{target}: cannot read ({_short_reason(exc, os.fspath(target))})") from exc
    records = []
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(value, dict):
            records.append(value)
    return records


# ------------------------------------------------------------------------------------ visualising
def _outline(mask: np.ndarray, width: int) -> np.ndarray:
    """Pixels of ``mask`` within ``width`` pixels of its edge (mask & ~eroded), image border excluded."""
    eroded = mask.copy()
    for _ in range(width):
        step = eroded.copy()
        step[1:, :] &= eroded[:-1, :]
        step[:-1, :] &= eroded[1:, :]
        step[:, 1:] &= eroded[:, :-1]
        step[:, :-1] &= eroded[:, 1:]
        eroded = step
    return mask & ~eroded


def _star(x: float, y: float, radius: float) -> list[tuple[float, float]]:
    """Vertices of a five-pointed star centred on (x, y), pointing up."""
    angles = np.pi / 2 + np.arange(10) * np.pi / 5
    radii = np.where(np.arange(10) % 2 == 0, radius, radius * 0.5)
    return [(float(x + r * np.cos(a)), float(y - r * np.sin(a))) for a, r in zip(angles, radii, strict=True)]


def overlay(
    image: np.ndarray,
    mask: np.ndarray,
    *,
    points: Sequence[tuple[float, float, int]] = (),
    box: tuple[float, float, float, float] | None = None,
    color: tuple[int, int, int] = (30, 144, 255),
    alpha: float = 0.5,
) -> np.ndarray:
    """A preview for people: the mask tinted with ``color`` and outlined, plus the prompts used.

    Positive points (label 1) are green stars, negative ones (label 0) red, both with a white border;
    other labels (SAM's -1 padding) are not drawn. ``box`` (x0, y0, x1, y1, inclusive) is a green
    rectangle. Line widths and marker sizes scale with the image so they read on both a 200 px thumbnail
    and a 4000 px photo. Returns a new HxWx3 uint8 array.
    """
    rgb = _array_to_rgb(np.asarray(image), "image")
    obj = np.asarray(mask).astype(bool)
    if obj.shape != rgb.shape[:2]:
        raise ValueError(f"overlay: mask shape {obj.shape} does not match image shape {rgb.shape[:2]}")
    height, width = obj.shape
    side = max(height, width)
    tint = np.clip(np.asarray(color, dtype=np.float64).reshape(3), 0, 255)
    a = float(np.clip(alpha, 0.0, 1.0))

    # blending through a 256-entry table per channel is ~10x faster than float maths on a 12 MP photo
    levels = np.arange(256, dtype=np.float64)
    out = rgb.copy()
    rows, cols = np.flatnonzero(obj.any(axis=1)), np.flatnonzero(obj.any(axis=0))
    if rows.size:  # only the mask's bounding box needs work
        window = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        inside, src = obj[window], rgb[window]
        for c in range(3):
            table = np.rint(levels * (1.0 - a) + tint[c] * a).astype(np.uint8)
            out[window][:, :, c] = np.where(inside, table[src[:, :, c]], src[:, :, c])
    out[_outline(obj, max(1, round(side / 640)))] = np.rint(tint).astype(np.uint8)
    canvas = Image.fromarray(out, mode="RGB")

    draw = ImageDraw.Draw(canvas)
    line = max(2, round(side / 400))
    if box is not None:
        x0, y0, x1, y1 = (float(v) for v in box)
        draw.rectangle([min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)], outline=(0, 230, 0), width=line)
    radius = max(7.0, side / 60)
    border = max(1, round(radius / 5))
    for x, y, label in points:
        if int(label) not in (0, 1):
            continue
        fill = (0, 220, 0) if int(label) == 1 else (235, 30, 30)
        draw.polygon(_star(float(x), float(y), radius), fill=fill, outline=(255, 255, 255), width=border)
    return np.asarray(canvas, dtype=np.uint8).copy()
