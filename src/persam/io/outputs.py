"""Outputs written safely: atomically (complete or not at all), and run logs that survive a crash."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any, BinaryIO

import numpy as np
from PIL import Image

from ..errors import PersamError
from .common import _short_reason
from .images import _array_to_rgb

_SAVE_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}


def temp_path(target: str | os.PathLike) -> Path:
    """A hidden, unique temporary name next to ``target`` (``.<name>.<random>.tmp``): written there, then
    moved over ``target`` with :func:`os.replace`, a file appears complete or not at all."""
    target = Path(target)
    return target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"


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
    tmp = temp_path(target)
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


def save_labels(path: str | os.PathLike, labels: np.ndarray) -> None:
    """Write an (H, W) map of ids (objects, instances) as a palette PNG with the DAVIS colours, atomically."""
    from .visual import label_image

    img = label_image(labels)
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


def _finite(value: Any) -> Any:
    """NaN and infinities as null: JSON has no such numbers, and one would make the whole log unreadable."""
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _json_default(obj: Any) -> Any:
    """Make numpy scalars/arrays and paths JSON-serialisable in records."""
    if isinstance(obj, np.generic):
        return _finite(obj.item())
    if isinstance(obj, np.ndarray):
        return _finite(obj.tolist())
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """Append one record as one JSON line, so that a crash loses at most the line being written.

    The line is written with a single ``write`` call and flushed. If the file ends in a partial line
    (an earlier crash), a newline is written first so the new record stays readable. Numpy values
    and paths are converted.
    """
    line = _json_line(record)
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


def _json_line(record: dict) -> bytes:
    text = json.dumps(_finite(record), ensure_ascii=False, default=_json_default, allow_nan=False)
    return text.encode("utf-8") + b"\n"


def write_jsonl(path: str | os.PathLike, records: list[dict]) -> None:
    """Replace a jsonl log with ``records``, atomically (a crash leaves the old log or the new one)."""
    atomic_write(path, lambda f: f.write(b"".join(_json_line(r) for r in records)))


def iter_jsonl(path: str | os.PathLike) -> Iterator[dict]:
    """Stream the records of a jsonl log written by :func:`append_jsonl`, one at a time (bounded memory).

    Lines that are not a complete JSON object (the partial last line of an interrupted run) are skipped
    rather than stopping a resumed run. A missing file has no records.
    """
    target = Path(path)
    try:
        handle = open(target, "rb")  # noqa: SIM115 - closed below, after the generator is done
    except FileNotFoundError:
        return
    except OSError as exc:
        raise PersamError(f"{target}: cannot read ({_short_reason(exc, os.fspath(target))})") from exc
    with handle:
        for raw in handle:
            if not raw.strip():
                continue
            try:
                value = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                continue
            if isinstance(value, dict):
                yield value


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """All records of a jsonl log (see :func:`iter_jsonl`); a missing file is empty."""
    return list(iter_jsonl(path))


class FolderLock:
    """One run at a time per output folder: a lock held while a run writes there.

    The lock is an OS file lock on :data:`~persam.io.files.RUN_MARKER` inside the folder, released by the OS
    when the process ends however it ends (no stale locks). Taking it also proves the folder is writable,
    before any model is loaded. Where the OS has no such locks (Windows), only the writability is checked.
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        from .files import RUN_MARKER

        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise PersamError(f"{self.folder}: exists and is not a folder")
        path = self.folder / RUN_MARKER
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._handle = open(path, "a+")  # noqa: SIM115 - held open for the run's lifetime
        except OSError as exc:
            raise PersamError(f"{self.folder}: cannot write here ({_short_reason(exc, os.fspath(path))})") from exc
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not on Windows
            return
        try:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._handle.close()
            raise PersamError(f"{self.folder}: another persam run is writing here; wait for it to finish "
                              f"or choose another output folder") from None
        self._handle.seek(0)
        self._handle.truncate()
        self._handle.write(f"{os.getpid()}\n")
        self._handle.flush()

    def release(self) -> None:
        if not self._handle.closed:
            self._handle.close()  # closing releases the lock

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def check_writable(path: str | os.PathLike) -> None:
    """Fail now, in one line, if a file cannot be created at ``path`` (before hours of work are spent)."""
    target = Path(path)
    probe = temp_path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(probe, "xb"):
            pass
        os.unlink(probe)
    except OSError as exc:
        raise PersamError(f"{target}: cannot write ({_short_reason(exc, os.fspath(probe))})") from exc
