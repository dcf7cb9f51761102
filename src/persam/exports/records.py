"""Reading a run folder back: its results.jsonl records and the masks they point to.

Every export walks the same records, so the quirks live here once: duplicate lines left by ``--overwrite``
(the last one wins), a partial last line from an interrupted run, old records written before instances
existed, and masks that are 0/255 greyscale (one instance) or palette PNGs of instance ids.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from PIL import Image

from ..errors import PersamError
from ..io import iter_jsonl, load_mask

#: Concept name given to old records (before several concepts and instances were recorded).
DEFAULT_CONCEPT = "object"


@dataclass
class Instance:
    """One segmented object in a photo: its id in the mask PNG, the concept it is, and how sure we are."""

    id: int
    concept: str = DEFAULT_CONCEPT
    score: float = 0.0
    present: bool = True


@dataclass
class Photo:
    """One record of a run, with paths resolved against the run folder."""

    image: Path  # the input photo (absolute)
    mask_rel: str  # the mask, relative to the run folder, POSIX separators ("x/y.png")
    out_dir: Path
    overlay_rel: str | None = None
    width: int | None = None
    height: int | None = None
    present: bool | None = None  # None: an old record, decided from the mask
    score: float = 0.0
    instances: list[Instance] | None = None  # None: an old record, made from the mask
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def mask(self) -> Path:
        return self.out_dir / self.mask_rel

    @property
    def overlay(self) -> Path | None:
        return self.out_dir / self.overlay_rel if self.overlay_rel else None

    @property
    def stem(self) -> str:
        """The mask's relative path without ".png": the base name of every file exported for this photo."""
        return str(PurePosixPath(self.mask_rel).with_suffix(""))

    @property
    def name(self) -> str:
        """The photo's file name as the user knows it."""
        return self.image.name

    @property
    def is_new_format(self) -> bool:
        return self.instances is not None

    def resolve(self, labels: np.ndarray) -> list[Instance]:
        """The instances actually in ``labels`` (the decoded mask), filling in what old records lack.

        Ids found in the mask but not in the record become instances of the record's only concept (or
        :data:`DEFAULT_CONCEPT`); listed instances with no pixels are dropped. Sets ``present`` for old
        records. Returned in id order.
        """
        ids = [int(v) for v in np.unique(labels) if v != 0]
        listed = {i.id: i for i in (self.instances or [])}
        concepts = {i.concept for i in listed.values()}
        fallback = next(iter(concepts)) if len(concepts) == 1 else DEFAULT_CONCEPT
        found = [listed.get(i) or Instance(i, fallback, self.score, True) for i in ids]
        found = [i for i in found if i.present]
        if self.present is None:
            self.present = bool(found)
        return found


def _number(value: Any, default: float = 0.0) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return default
    return out if math.isfinite(out) else default


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _instances(value: Any, score: float) -> list[Instance] | None:
    if not isinstance(value, list):
        return None
    out = []
    for item in value:
        if not isinstance(item, dict) or _int_or_none(item.get("id")) is None:
            continue
        concept = item.get("concept")
        out.append(
            Instance(
                id=int(item["id"]),
                concept=str(concept) if concept not in (None, "") else DEFAULT_CONCEPT,
                score=_number(item.get("score"), score),
                present=bool(item.get("present", True)),
            )
        )
    return out


def photo_from_record(record: dict[str, Any], out_dir: str | os.PathLike) -> Photo | None:
    """A :class:`Photo` from one results.jsonl record, or None when it is not a photo record."""
    image, mask = record.get("image"), record.get("mask")
    if not isinstance(image, str) or not isinstance(mask, str) or not mask:
        return None
    mask_rel = mask.replace("\\", "/")
    if PurePosixPath(mask_rel).is_absolute() or ".." in PurePosixPath(mask_rel).parts:
        return None  # never let a record make us read or write outside the run folder
    overlay = record.get("overlay")
    overlay_rel = overlay.replace("\\", "/") if isinstance(overlay, str) and overlay else None
    if overlay_rel and (PurePosixPath(overlay_rel).is_absolute() or ".." in PurePosixPath(overlay_rel).parts):
        overlay_rel = None
    score = _number(record.get("score"))
    instances = _instances(record.get("instances"), score)
    present = record.get("present") if instances is not None else None
    return Photo(
        image=Path(image),
        mask_rel=mask_rel,
        out_dir=Path(out_dir),
        overlay_rel=overlay_rel,
        width=_int_or_none(record.get("width")),
        height=_int_or_none(record.get("height")),
        present=bool(present) if present is not None else (bool(instances) if instances is not None else None),
        score=score,
        instances=instances,
        raw=record,
    )


def _lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(position, record) for every complete JSON object line; anything else is skipped."""
    return enumerate(iter_jsonl(path))


def iter_photos(out_dir: str | os.PathLike) -> Iterator[Photo]:
    """The photos of a run, one at a time, in results.jsonl order.

    Streams results.jsonl twice: the first pass only remembers the last line of each mask, because a
    rerun with ``--overwrite`` appends a new line for the same photo and the newest one is the truth. So
    memory stays small for any album size. A missing results.jsonl is a :class:`PersamError`.
    """
    folder = Path(out_dir)
    path = folder / "results.jsonl"
    if not path.is_file():
        raise PersamError(f"{path}: not found (is {folder} the output folder of 'persam segment'?)")
    try:
        last: dict[str, int] = {}
        for number, record in _lines(path):
            mask = record.get("mask")
            if isinstance(mask, str) and isinstance(record.get("image"), str):
                last[mask] = number
        keep = set(last.values())
        del last
        for number, record in _lines(path):
            if number in keep:
                photo = photo_from_record(record, folder)
                if photo is not None:
                    yield photo
    except OSError as exc:
        raise PersamError(f"{path}: cannot read ({exc.strerror or exc})") from exc


def load_labels(photo: Photo) -> np.ndarray:
    """The photo's mask as an HxW uint8 map of instance ids (0 = background).

    A palette PNG holds the ids themselves; any other mask (the 0/255 greyscale of a single-instance run,
    or anything :func:`persam.io.load_mask` reads) is instance 1. The size must match the record's
    width/height when it has them. Failures are a one-line :class:`PersamError`.
    """
    path = photo.mask
    name = f"{photo.mask_rel} (mask of {photo.name})"
    if not path.is_file():
        raise PersamError(f"{name}: mask file not found")
    try:
        with Image.open(path) as im:
            im.load()
            labels = np.asarray(im).copy() if im.mode == "P" else None
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise PersamError(f"{name}: not a readable mask ({type(exc).__name__})") from exc
    if labels is None:
        labels = load_mask(path, name=name).astype(np.uint8)
    if photo.width and photo.height and labels.shape != (photo.height, photo.width):
        raise PersamError(
            f"{name}: mask is {labels.shape[1]}x{labels.shape[0]} but the record says {photo.width}x{photo.height}"
        )
    return labels


def common_root(paths: list[Path]) -> Path | None:
    """The deepest folder holding all ``paths`` (None when there is none, e.g. two Windows drives)."""
    if not paths:
        return None
    try:
        return Path(os.path.commonpath([os.path.abspath(p.parent) for p in paths]))
    except ValueError:
        return None


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of the mask's pixels, x1/y1 exclusive; None for an empty mask."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not rows.size:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1
