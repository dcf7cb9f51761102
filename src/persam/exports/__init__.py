"""Exports of a finished run folder: COCO annotations, cut-outs, DreamBooth crops and an HTML report.

A run (``persam segment ... -o OUT``) leaves masks, overlays and ``OUT/results.jsonl``; everything here is
derived from those, so it can be run again at any time (``write_exports(OUT, ["report"])``). All kinds
are made in a single streaming pass over the records, one photo in memory at a time. A photo whose mask
or image cannot be read is skipped with a one-line notice; it never stops the others.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..errors import PersamError
from ..io import load_image
from .coco import CocoWriter
from .cutouts import BACKGROUNDS, write_photo_crops, write_photo_cutouts
from .records import Instance, Photo, common_root, iter_photos, load_labels
from .report import ReportBuilder

#: What ``--export`` accepts. "masks" are the run's own PNGs (already written; listed so it can be asked for).
EXPORTS = ("masks", "coco", "cutouts", "dreambooth", "report")

__all__ = [
    "BACKGROUNDS",
    "EXPORTS",
    "Instance",
    "Photo",
    "iter_photos",
    "load_labels",
    "parse_exports",
    "write_exports",
]


def parse_exports(text: str | Iterable[str]) -> list[str]:
    """``"coco,report"`` (or a list) -> validated kinds in :data:`EXPORTS` order; "all" means every kind."""
    items = text.split(",") if isinstance(text, str) else list(text)
    kinds = {k.strip().lower() for k in items if k.strip()}
    if "all" in kinds:
        kinds = set(EXPORTS)
    unknown = sorted(kinds - set(EXPORTS))
    if unknown:
        raise PersamError(f"unknown export {', '.join(unknown)} (choose from {', '.join(EXPORTS)}, or all)")
    return [k for k in EXPORTS if k in kinds]


def _notice(message: str) -> None:
    tqdm.write(f"persam: {message}", file=sys.stderr)


def write_exports(
    out_dir: str | os.PathLike,
    kinds: Iterable[str],
    *,
    dreambooth_size: int = 512,
    background: str = "white",
    soft_edges: bool = True,
    progress: bool = False,
    notice: Callable[[str], None] | None = None,
) -> dict[str, Path]:
    """Write the asked ``kinds`` (see :data:`EXPORTS`) for the run in ``out_dir``; returns kind -> path.

    coco -> ``OUT/coco.json``; cutouts -> ``OUT/cutouts/``; dreambooth -> ``OUT/dreambooth/<concept>/``
    (``dreambooth_size`` square, ``background`` "white", "transparent" or "keep"; cut-outs and crops with
    ``soft_edges``: alpha anti-aliased along the photo's edges, see :func:`persam.edges.soft_alpha`); report ->
    ``OUT/report.html`` (+ ``OUT/thumbs/``); masks -> ``OUT`` itself. ``progress`` shows a bar on stderr.
    Photos that cannot be read are reported through ``notice`` (default: one line on stderr) and skipped.
    A missing results.jsonl or a bad option is a :class:`PersamError`.
    """
    kinds = parse_exports(kinds)
    if background not in BACKGROUNDS:
        raise PersamError(f"--background must be one of {', '.join(BACKGROUNDS)}, not {background!r}")
    if not 16 <= int(dreambooth_size) <= 8192:
        raise PersamError(f"--crop-size must be between 16 and 8192 pixels, not {dreambooth_size}")
    say = notice or _notice
    folder = Path(out_dir)
    images: list[Path] = [p.image for p in iter_photos(folder)]  # also checks that results.jsonl is there
    coco = CocoWriter(folder, common_root(images)) if "coco" in kinds else None
    report = ReportBuilder(folder) if "report" in kinds else None
    need_pixels = "cutouts" in kinds or "dreambooth" in kinds
    need_labels = coco is not None or need_pixels
    total, skipped = len(images), 0
    del images
    try:
        with tqdm(total=total, desc="exporting", unit="img", disable=not progress, file=sys.stderr) as bar:
            for photo in iter_photos(folder):
                bar.update(1)
                try:
                    _export_photo(folder, photo, kinds, coco, report, need_labels, need_pixels,
                                  dreambooth_size, background, soft_edges)
                except PersamError as exc:
                    skipped += 1
                    say(f"skipped {photo.name} in the exports: {exc}")
        written: dict[str, Path] = {}
        for kind in kinds:
            if kind == "coco" and coco is not None:
                written[kind] = coco.finish()
            elif kind == "report" and report is not None:
                written[kind] = report.finish()
            elif kind == "masks":
                written[kind] = folder
            else:
                written[kind] = folder / kind
    finally:
        if coco is not None:
            coco.close()
    if skipped:
        say(f"{skipped} of {total} photo(s) skipped in the exports (see above)")
    return written


def _export_photo(
    folder: Path,
    photo: Photo,
    kinds: list[str],
    coco: CocoWriter | None,
    report: ReportBuilder | None,
    need_labels: bool,
    need_pixels: bool,
    size: int,
    background: str,
    soft_edges: bool = True,
) -> None:
    """Everything asked for one photo; every failure is a PersamError for the caller to report."""
    labels: np.ndarray | None = None
    if need_labels or not photo.is_new_format:  # old records: found or not is in the mask only
        labels = load_labels(photo)
    elif not photo.mask.is_file():
        raise PersamError(f"{photo.mask_rel} (mask of {photo.name}): mask file not found")
    if labels is not None:
        instances = photo.resolve(labels)
        present = bool(instances)
    else:
        instances = [i for i in photo.instances or [] if i.present]
        present = bool(photo.present)

    image = None
    if need_pixels and instances:
        assert labels is not None
        image = load_image(photo.image)
        if image.shape[:2] != labels.shape:
            h, w = labels.shape
            raise PersamError(
                f"{photo.name}: the photo is {image.shape[1]}x{image.shape[0]} but its mask is {w}x{h} "
                "(was the photo changed after the run?)"
            )
    if coco is not None:
        assert labels is not None
        coco.add(photo, labels, instances)
    if "cutouts" in kinds and image is not None:
        write_photo_cutouts(folder, photo, image, labels, instances, soft=soft_edges)
    if "dreambooth" in kinds and image is not None:
        write_photo_crops(folder, photo, image, labels, instances, size=size, background=background,
                          soft=soft_edges)
    if report is not None:
        report.add(photo, instances, present, labels=lambda: labels if labels is not None else load_labels(photo))

