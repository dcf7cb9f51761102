"""The album check over a finished run's folder: a concept's present photos less like its object than the
album's best matches are turned absent (:mod:`persam.album_check` decides; this module reads and rewrites the
run's files), each concept of the run on its own.

It runs once every photo of a run is done, over every record of the folder (earlier runs' too), so the
answer is the same however often the run was interrupted and resumed. Where it turns a concept absent, the
search's mask of the photo is kept in ``OUT/.persam-check/`` and the concept's instances in its record entry
(``album_check``), so that a later check with other views (photos added to the album) can give it back;
``present``, the instances and the mask PNG say the final answer (files first, then ``results.jsonl``: a check
stopped in between is mended by the next). A concept's entry is the record itself in a run of one concept,
``record["concepts"][name]`` with several.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..album_check import Found, check, choose_views, describe
from ..errors import PersamError
from ..io import load_image, read_jsonl, save_image, write_jsonl
from .images import preview, save_result_mask

#: where the search's masks of photos the check changed are kept, inside the run's folder
CHECKED = ".persam-check"


@dataclass
class CheckSummary:
    """What the album check did, as (record "mask" path, concept) pairs."""

    checked: int = 0  # present findings looked at
    views: dict[str, int] = field(default_factory=dict)  # per concept: photos taken as views
    turned_absent: list[tuple[str, str]] = field(default_factory=list)
    restored: list[tuple[str, str]] = field(default_factory=list)  # given back (a later, larger album)
    now_absent: list[str] = field(default_factory=list)  # photos no concept is present in any more
    now_present: list[str] = field(default_factory=list)  # photos present again
    skipped: list[str] = field(default_factory=list)  # one line each: photos that could not be read again


def _entry(record: dict, concept: str, several: bool) -> dict | None:
    """Where a concept's decision lives in a record."""
    if not several:
        return record
    entry = (record.get("concepts") or {}).get(concept)
    return entry if isinstance(entry, dict) else None


def _read_labels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


class _Photo:
    """One record's photo and masks: the current mask PNG and, where the check set a concept aside, the
    search's mask it kept."""

    def __init__(self, output: Path, record: dict, palette: bool) -> None:
        self.output, self.record, self.palette = output, record, palette
        self.kept_path = output / CHECKED / record["mask"]
        self.image = load_image(record["image"])
        self.labels = _read_labels(output / record["mask"])
        self.original = self.labels.copy()  # as this check found it
        self.kept = _read_labels(self.kept_path) if self.kept_path.is_file() else None
        self.was_present = bool(record.get("present"))
        sizes = {self.labels.shape, self.image.shape[:2]} | ({self.kept.shape} if self.kept is not None else set())
        if len(sizes) > 1:
            raise PersamError(f"{output / record['mask']}: not the size of its photo")

    def pixels(self, instances: list[dict], labels: np.ndarray) -> np.ndarray:
        """A concept's pixels in ``labels`` (its instances' ids; every object pixel of a 0/255 mask)."""
        if not self.palette:
            return labels > 0
        return np.isin(labels, [int(i["id"]) for i in instances if isinstance(i, dict) and "id" in i])

    def found(self, instances: list[dict]) -> tuple[np.ndarray, np.ndarray]:
        """What the search found of a concept, and the labels it is in: the current mask, or (a concept set
        aside, or being set aside when a check was stopped) the kept one."""
        here = self.pixels(instances, self.labels)
        if here.any() or self.kept is None:
            return here, self.labels
        return self.pixels(instances, self.kept), self.kept

    def write(self, keep: bool) -> None:
        """The search's mask aside first (``keep``: a concept of it is set aside) or dropped (none is), then the
        mask PNG and the preview of the current labels."""
        if keep and self.kept is None:
            self.kept_path.parent.mkdir(parents=True, exist_ok=True)
            self.kept = self.original
            save_result_mask(self.kept_path, self.kept, self.palette)
        save_result_mask(self.output / self.record["mask"], self.labels, self.palette)
        if self.record.get("overlay"):
            points = [tuple(p) for p in self.record.get("points") or []]
            save_image(self.output / self.record["overlay"], preview(
                self.image, self.labels, self.palette, not self.labels.any(), points, self.record.get("box")))
        if not keep and self.kept_path.is_file():
            os.remove(self.kept_path)


def check_run(output: Path, results_path: Path, segmenter) -> CheckSummary:
    """Check every concept's present photos of the run in ``output`` with ``segmenter`` (the
    :class:`~persam.album.AlbumSegmenter` of the run: its concepts, encoder, cache and presence threshold),
    rewriting the files of photos whose answer changes, and ``results.jsonl`` once, atomically."""
    summary = CheckSummary()
    if segmenter.presence <= 0:  # presence 0: every mask found is kept
        return summary
    several = len(segmenter.concepts) > 1
    records = read_jsonl(results_path)
    photos: dict[str, _Photo] = {}
    changed: set[str] = set()
    for name, persam in zip(segmenter.concepts.names, segmenter.concepts.persams, strict=True):
        reference = persam.own_score()
        found = []
        for record in records:
            entry = _entry(record, name, several)
            if entry is None or not (entry.get("present") or (entry.get("album_check") or {}).get("present") is False):
                continue  # the search said absent: nothing to check
            try:
                photo = photos.get(record["mask"]) or _Photo(output, record, segmenter.palette)
            except (PersamError, OSError) as exc:
                summary.skipped.append(f"{record['image']}: not checked ({exc})")
                continue
            photos[record["mask"]] = photo
            mine, _ = photo.found(_instances(record, entry, name))
            if not mine.any():
                continue
            cells, colour = describe(persam, segmenter.encode(photo.image), photo.image, mine)
            found.append(Found(record["mask"], float(entry["score"]) / reference, cells, colour))
        verdicts = check(found, segmenter.presence)
        summary.checked += len(found)
        summary.views[name] = len(choose_views(found))
        for f in found:
            if _apply(photos[f.key], name, several, verdicts.get(f.key), summary):
                changed.add(f.key)
    for key in sorted(changed):
        photo = photos[key]
        photo.write(keep=any((e.get("album_check") or {}).get("present") is False for e in _entries(photo.record)))
        if photo.was_present != photo.record["present"]:
            (summary.now_absent if photo.was_present else summary.now_present).append(key)
    write_jsonl(results_path, records)
    return summary


def _instances(record: dict, entry: dict, concept: str) -> list[dict]:
    """The concept's instances in a record: those listed, or those the check set aside."""
    listed = [i for i in record.get("instances") or [] if isinstance(i, dict) and i.get("concept", concept) == concept]
    return listed or list((entry.get("album_check") or {}).get("instances") or [])


def _apply(photo: _Photo, concept: str, several: bool, verdict, summary: CheckSummary) -> bool:
    """One concept's verdict on one photo: its instances out of (or back into) the labels and the record;
    whether the photo's files change."""
    record = photo.record
    entry = _entry(record, concept, several)
    was_present = entry.get("present") is not False
    should = verdict.present if verdict is not None else True
    mine = _instances(record, entry, concept)
    pixels, source = photo.found(mine)
    if verdict is None:
        entry.pop("album_check", None)
    else:
        entry["album_check"] = {"present": verdict.present, "score": round(verdict.score, 4),
                                "threshold": round(verdict.threshold, 4)}
        if not verdict.present:
            entry["album_check"]["instances"] = mine
    if was_present and not should:
        photo.labels = np.where(pixels, 0, photo.labels).astype(photo.labels.dtype)
        record["instances"] = [i for i in record.get("instances") or [] if i not in mine]
        entry["present"] = False
        summary.turned_absent.append((record["mask"], concept))
    elif should and (not was_present or source is not photo.labels):  # back (or a stopped check's files mended)
        photo.labels = np.where(pixels, source, photo.labels).astype(photo.labels.dtype)
        if not was_present:
            record["instances"] = sorted((record.get("instances") or []) + mine, key=lambda i: i.get("id", 0))
            entry["present"] = True
            summary.restored.append((record["mask"], concept))
    else:  # unchanged
        return False
    record["present"] = bool(record.get("instances"))
    record["area"] = int((photo.labels > 0).sum())
    return True


def _entries(record: dict) -> list[dict]:
    concepts = record.get("concepts")
    if isinstance(concepts, dict):
        return [e for e in concepts.values() if isinstance(e, dict)]
    return [record]
