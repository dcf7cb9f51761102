"""The album check over a finished run's folder: present photos less like the object than the album's best
matches are turned absent (:mod:`persam.album_check` decides; this module reads and rewrites the run's files).

It runs once every photo of a run is done, over every record of the folder (earlier runs' too), so the
answer is the same however often the run was interrupted and resumed. A photo it turns absent keeps its
search's mask in ``OUT/.persam-check/`` and its instances in the record (``album_check``), so that a later
check with other views (photos added to the album) can give it back; ``present`` and the mask PNG say the
final answer (files first, then ``results.jsonl``: a check stopped in between is mended by the next).
Only runs of one concept are checked: with several, the concepts already compete for every object (the
album's "one concept per object").
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..album_check import Found, check, choose_views, describe
from ..errors import PersamError
from ..io import load_image, overlay, overlay_labels, read_jsonl, save_image, save_labels, save_mask, write_jsonl

#: where the masks of photos the check turned absent are kept, inside the run's folder
CHECKED = ".persam-check"


@dataclass
class CheckSummary:
    """What the album check did: photos it turned absent and photos it gave back (a later, larger album)."""

    checked: int = 0
    views: int = 0
    turned_absent: list[str] = field(default_factory=list)  # record "mask" paths
    restored: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # one line each: photos that could not be read again


def _read_labels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def _read(output: Path, checked_dir: Path, record: dict) -> tuple[np.ndarray, np.ndarray]:
    """A record's photo and the search's mask (label ids, or 0/255)."""
    image = load_image(record["image"])
    labels = _read_labels(output / record["mask"])
    if not labels.any() and (checked_dir / record["mask"]).is_file():
        # turned absent (or being turned absent when a run was stopped): the search's mask is kept aside
        labels = _read_labels(checked_dir / record["mask"])
    return image, labels


def check_run(output: Path, results_path: Path, segmenter, overlays: bool) -> CheckSummary:
    """Check every present photo of the run in ``output`` with ``segmenter``'s one concept (an
    :class:`~persam.album.AlbumSegmenter`: its encoder, cache and presence threshold), rewriting the files of
    photos whose answer changes, and ``results.jsonl`` once, atomically."""
    summary = CheckSummary()
    if len(segmenter.concepts) != 1 or segmenter.presence <= 0:  # presence 0: every mask found is kept
        return summary
    persam = segmenter.concepts.persams[0]
    reference = persam.own_score()
    records = read_jsonl(results_path)
    checked_dir = output / CHECKED
    found = []
    for record in records:
        previous = record.get("album_check") or {}
        if not (record.get("present") or previous.get("present") is False):
            continue  # the search said absent: nothing to check
        try:
            image, labels = _read(output, checked_dir, record)
        except (PersamError, OSError) as exc:
            summary.skipped.append(f"{record['image']}: not checked ({exc})")
            continue
        if labels.shape != image.shape[:2] or not labels.any():
            continue
        cells, colour = describe(segmenter.encode(image), image, labels > 0, persam.predictor.model.img_size,
                                 persam.settings.feature_mask_threshold)
        found.append(Found(record["mask"], float(record["score"]) / reference, cells, colour))
    verdicts = check(found, segmenter.presence)
    summary.checked, summary.views = len(found), len(choose_views(found))
    by_mask = {r["mask"]: r for r in records}
    for f in found:
        record = by_mask[f.key]
        verdict = verdicts.get(f.key)
        now_present = record.get("present") is not False
        should = verdict.present if verdict is not None else True
        if now_present != should:  # read again: the photos are not all kept in memory for the few that change
            image, labels = _read(output, checked_dir, record)
        if now_present and not should:
            _turn_absent(output, checked_dir, record, labels, segmenter.palette, image, overlays)
            summary.turned_absent.append(f.key)
        elif should and not now_present:
            _restore(output, checked_dir, record, labels, segmenter.palette, image, overlays)
            summary.restored.append(f.key)
        if verdict is None:
            record.pop("album_check", None)
        else:
            entry = {"present": verdict.present, "score": round(verdict.score, 4),
                     "threshold": round(verdict.threshold, 4)}
            if not verdict.present:
                entry["instances"] = (record.get("album_check") or {}).get("instances", record.get("instances"))
                entry["area"] = (record.get("album_check") or {}).get("area", record.get("area"))
            record["album_check"] = entry
    write_jsonl(results_path, records)
    return summary


def _turn_absent(output: Path, checked_dir: Path, record: dict, labels: np.ndarray, palette: bool,
                 image: np.ndarray, overlays: bool) -> None:
    """Keep the search's mask aside, write an empty one and the plain photo as the preview."""
    kept = checked_dir / record["mask"]
    kept.parent.mkdir(parents=True, exist_ok=True)
    _save(kept, labels, palette)
    _save(output / record["mask"], np.zeros_like(labels), palette)
    if overlays and record.get("overlay"):
        save_image(output / record["overlay"], image)
    record["album_check"] = {"instances": record.get("instances"), "area": record.get("area")}
    record.update(present=False, instances=[], area=0)


def _restore(output: Path, checked_dir: Path, record: dict, labels: np.ndarray, palette: bool,
             image: np.ndarray, overlays: bool) -> None:
    """Give back what the search found: its mask, preview and instances."""
    _save(output / record["mask"], labels, palette)
    if overlays and record.get("overlay"):
        preview = overlay_labels(image, labels) if palette else overlay(
            image, labels > 0, points=[tuple(p) for p in record.get("points") or []], box=record.get("box"))
        save_image(output / record["overlay"], preview)
    previous = record.get("album_check") or {}
    record.update(present=True, instances=previous.get("instances") or [], area=previous.get("area", 0))
    os.remove(checked_dir / record["mask"])


def _save(path: Path, labels: np.ndarray, palette: bool) -> None:
    if palette:
        save_labels(path, labels)
    else:
        save_mask(path, labels > 0)
