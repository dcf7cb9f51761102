"""Runs: a personalization applied to a folder of photos, writing masks, previews and a log that resumes.

This is the library API under every shell: the command line, the web app and a Ray job all call it.
Creating a run checks everything the user gave that can be checked without a model (inputs found, output
folder writable and not in use by another run, what is already done), so that mistakes fail in one line
before minutes are spent loading and fitting. :meth:`ImageRun.run` then yields one event per photo; the
caller shows progress as it likes.

Output layout (see the README): for a target ``photos/x/y.jpg``, ``OUT/x/y.png`` (the mask, 0/255),
``OUT/x/y_overlay.jpg`` (preview) and one line in ``OUT/results.jsonl`` -- exactly one line per target,
whatever was interrupted, resumed or redone. With several concepts or every instance (:mod:`persam.album`),
the mask is a palette PNG of instance ids and the record lists the ``instances``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import PersamError
from ..io import (
    FolderLock,
    append_jsonl,
    find_images,
    load_image,
    overlay,
    overlay_labels,
    read_jsonl,
    save_image,
    save_labels,
    save_mask,
    write_jsonl,
)

RESULTS = "results.jsonl"


@dataclass
class ImageDone:
    """One photo segmented and its outputs written."""

    source: Path
    record: dict  # the line written to results.jsonl
    result: object  # the method's Result (mask, score, ...)


@dataclass
class ImageFailed:
    """One photo that could not be read or segmented; the run goes on."""

    source: Path
    message: str  # one line naming the file and the problem


@dataclass
class RunSummary:
    """How a run ended."""

    done: int = 0
    failed: int = 0
    already_done: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)


def output_stems(rel_paths: list[Path]) -> list[Path]:
    """Output path stems (no suffix) mirroring the inputs' folders, made unique (a.jpg and a.png)."""
    seen: set[str] = set()
    stems = []
    for rel in rel_paths:
        stem = rel.with_suffix("")
        candidate, n = stem, 2
        while str(candidate).lower() in seen:
            candidate = stem.with_name(f"{stem.name}-{n}")
            n += 1
        seen.add(str(candidate).lower())
        stems.append(candidate)
    return stems


class ImageRun:
    """A run over photos (files and folders, searched recursively) into one output folder.

    ``overwrite`` redoes photos that already have results; otherwise they are skipped (resume). The
    output folder is locked for the lifetime of the run (use it as a context manager, or call
    :meth:`close`): a second run into the same folder is refused in one line.
    """

    def __init__(self, targets: Iterable[str | os.PathLike], output: str | os.PathLike, *,
                 overwrite: bool = False, overlays: bool = True) -> None:
        self.output = Path(output)
        targets = [os.fspath(t) for t in targets]
        found = find_images(targets, exclude=[self.output])
        if not found:
            raise PersamError(f"{' '.join(targets)}: no images found (looked for common image types)")
        self.lock = FolderLock(self.output)  # writable and ours, before anything else is done
        try:
            self.results_path = self.output / RESULTS
            self.writer = PhotoWriter(self.output, overlays)
            stems = output_stems([rel for _, rel in found])
            records = read_jsonl(self.results_path)
            done = set() if overwrite else {
                r["mask"] for r in records if isinstance(r.get("mask"), str) and (self.output / r["mask"]).exists()}
            self.todo = [(src, stem) for (src, _), stem in zip(found, stems, strict=True)
                         if f"{stem}.png" not in done]
            self.total = len(found)
            self.already_done = self.total - len(self.todo)
            redo = {f"{stem}.png" for _, stem in self.todo}
            kept = [r for r in records if r.get("mask") not in redo]
            if len(kept) != len(records):  # one line per target: the lines of photos about to be redone go
                write_jsonl(self.results_path, kept)
        except BaseException:
            self.lock.release()
            raise

    def __len__(self) -> int:
        return len(self.todo)

    def close(self) -> None:
        self.lock.release()

    def __enter__(self) -> ImageRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, segmenter) -> Iterator[ImageDone | ImageFailed]:
        """Segment every photo still to do with ``segmenter``, write its outputs atomically and log it; one
        event per photo.

        ``segmenter`` is a :class:`~persam.album.AlbumSegmenter` (presence, instances, several concepts), a
        :class:`~persam.method.PerSAM` (run as an album of one concept: absent photos get an empty mask), or
        anything with ``segment(image) -> Result``.
        """
        from ..album import AlbumSegmenter, ConceptSet
        from ..method import PerSAM

        if isinstance(segmenter, (PerSAM, ConceptSet)):
            segmenter = AlbumSegmenter(segmenter)
        for src, stem in self.todo:
            t0 = time.perf_counter()
            try:
                image = load_image(src)
                result = segmenter.segment(image)
            except PersamError as exc:
                yield ImageFailed(src, str(exc))
                continue
            yield ImageDone(src, self.writer.write(src, stem, image, result, t0), result)

    def check_album(self, segmenter):
        """Once every photo is done: the album check (:mod:`persam.runs.album_check`) over every record of
        the folder with ``segmenter`` (the :class:`~persam.album.AlbumSegmenter` the photos were segmented
        with); a :class:`~persam.runs.album_check.CheckSummary`."""
        from ..album import AlbumSegmenter, ConceptSet
        from ..method import PerSAM
        from .album_check import check_run

        if isinstance(segmenter, (PerSAM, ConceptSet)):
            segmenter = AlbumSegmenter(segmenter)
        return check_run(self.output, self.results_path, segmenter)


def save_result_mask(path: Path, labels: np.ndarray, palette: bool) -> None:
    """A photo's mask as runs write it: a palette PNG of instance ids, or 0/255."""
    if palette:
        save_labels(path, labels)
    else:
        save_mask(path, labels > 0)


def preview(image: np.ndarray, labels: np.ndarray, palette: bool, absent: bool, points, box) -> np.ndarray:
    """A photo's preview as runs write it: the photo as it is when nothing is present, else its instances in
    colour (palette) or the mask with the clicks and box used."""
    if absent:
        return image
    if palette:
        return overlay_labels(image, labels)
    return overlay(image, labels > 0, points=points, box=box)


class PhotoWriter:
    """Writes one photo's outputs into a folder the way every run does: the mask (0/255, or a palette PNG of
    instance ids when ``result.palette``), the preview and one line of ``results.jsonl``, each atomically.

    ``result`` is a :class:`~persam.findings.Findings` or a :class:`~persam.method.Result`. Ray's actors write
    with it too, into a scratch folder, so their files are byte for byte a local run's.
    """

    def __init__(self, output: Path, overlays: bool = True) -> None:
        self.output = Path(output)
        self.overlays = overlays
        self.results_path = self.output / RESULTS

    def write(self, src: Path, stem: Path, image: np.ndarray, result, t0: float) -> dict:
        """Write and log ``result`` for ``src``; the record, with ``t0`` the photo's start time."""
        mask_rel = f"{stem}.png"
        palette = getattr(result, "palette", False)
        labels = result.labels if palette else result.mask
        save_result_mask(self.output / mask_rel, labels, palette)
        record = {"image": str(Path(src).absolute()), "mask": mask_rel}
        if self.overlays:
            overlay_rel = f"{stem}_overlay.jpg"
            save_image(self.output / overlay_rel, preview(image, labels, palette, result.present is False,
                                                          result.points, result.box))
            record["overlay"] = overlay_rel
        record.update(result.to_record())
        record.setdefault("present", bool(result.mask.any()))
        record["seconds"]["total"] = round(time.perf_counter() - t0, 4)
        append_jsonl(self.results_path, record)
        return record
