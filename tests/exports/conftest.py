"""A small fake run folder, as ``persam segment`` leaves it, built from real PerSeg photos and their masks."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from persam.io import overlay, save_image, save_mask

from ..conftest import PERSEG

WEIRD = "we<ird> & \"q\" 'x'"  # a file name that must be escaped everywhere it appears in HTML
SIDE = 240  # photos are scaled down so that the tests stay fast


@dataclass
class FakeRun:
    out: Path
    photos: Path
    labels: dict[str, np.ndarray] = field(default_factory=dict)  # mask rel -> instance ids
    concepts: dict[str, dict[int, str]] = field(default_factory=dict)  # mask rel -> id -> concept
    images: dict[str, Path] = field(default_factory=dict)  # mask rel -> photo


def _photo(kind: str, index: str) -> tuple[Image.Image, np.ndarray]:
    """A PerSeg photo and its object mask, scaled to SIDE pixels wide."""
    image = Image.open(PERSEG / "Images" / kind / f"{index}.jpg").convert("RGB")
    mask = Image.open(PERSEG / "Annotations" / kind / f"{index}.png")
    height = round(image.height * SIDE / image.width)
    image = image.resize((SIDE, height), Image.Resampling.LANCZOS)
    ids = np.asarray(mask.resize((SIDE, height), Image.Resampling.NEAREST)) > 0
    return image, ids


def _box(mask: np.ndarray) -> list[int]:
    ys, xs = np.nonzero(mask)
    return [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())]


def build_run(root: Path, *, old_record: bool = True) -> FakeRun:
    """Photos (one not found, one without overlay, one with two instances, one with a hostile name) and OUT."""
    if not (PERSEG / "Images").is_dir():
        pytest.skip(f"PerSeg data not found in {PERSEG}")
    run = FakeRun(out=root / "out", photos=root / "photos")
    records = []

    def add(rel: str, image: Image.Image, labels: np.ndarray, concepts: dict[int, str], *, scores=None,
            with_overlay: bool = True, old: bool = False) -> None:
        src = run.photos / f"{rel}.jpg"
        src.parent.mkdir(parents=True, exist_ok=True)
        image.save(src, quality=92)
        rgb = np.asarray(Image.open(src).convert("RGB"))
        mask_rel = f"{rel}.png"
        if labels.max() <= 1:
            save_mask(run.out / mask_rel, labels > 0)
        else:
            pal = Image.fromarray(labels.astype(np.uint8), mode="P")
            pal.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 9))
            (run.out / mask_rel).parent.mkdir(parents=True, exist_ok=True)
            pal.save(run.out / mask_rel)
        ids = [int(v) for v in np.unique(labels) if v]
        scores = scores or {i: round(0.95 - 0.1 * i, 2) for i in ids}
        instances = [
            {"id": i, "concept": concepts[i], "score": scores[i], "present": True, "box": _box(labels == i),
             "area": int((labels == i).sum())}
            for i in ids
        ]
        record = {"image": str(src), "mask": mask_rel}
        if with_overlay:
            record["overlay"] = f"{rel}_overlay.jpg"
            save_image(run.out / record["overlay"], overlay(rgb, labels > 0))
        if old:
            record.update({"score": max(scores.values(), default=0.0), "area": int((labels > 0).sum())})
        else:
            record.update({"width": rgb.shape[1], "height": rgb.shape[0], "present": bool(ids),
                           "score": max(scores.values(), default=0.0), "instances": instances})
        record["seconds"] = {"total": 0.5}
        records.append(record)
        run.labels[mask_rel] = labels.astype(np.uint8)
        run.concepts[mask_rel] = {i: concepts[i] for i in ids}
        run.images[mask_rel] = src

    cat, cat_mask = _photo("cat", "00")
    add("cat/00", cat, cat_mask.astype(np.uint8), {1: "cat"}, scores={1: 0.91})
    duck, duck_mask = _photo("duck_toy", "01")
    add("duck/01", duck, duck_mask.astype(np.uint8), {1: "duck"}, scores={1: 0.62}, with_overlay=False)
    # two instances of two concepts in one palette mask: the sneaker and a synthetic "ball" square
    shoe, shoe_mask = _photo("colorful_sneaker", "02")
    two = shoe_mask.astype(np.uint8)
    two[5:40, 5:40] = np.where(two[5:40, 5:40] == 0, 2, two[5:40, 5:40])
    add("shoes/02", shoe, two, {1: "sneaker", 2: "ball"}, scores={1: 0.83, 2: 0.41})
    # not found: an all-zero mask, no instances
    empty_img, empty_mask = _photo("duck_toy", "02")
    add("duck/02", empty_img, np.zeros_like(empty_mask, dtype=np.uint8), {}, scores={})
    weird, weird_mask = _photo("cat", "01")
    add(f"cat/{WEIRD}", weird, weird_mask.astype(np.uint8), {1: "cat"}, scores={1: 0.77})
    if old_record:  # written before instances/width existed
        old, old_mask = _photo("colorful_sneaker", "00")
        add("old/00", old, old_mask.astype(np.uint8), {1: "object"}, scores={1: 0.55}, old=True)

    with open(run.out / "results.jsonl", "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return run


@pytest.fixture
def fake_run(tmp_path: Path) -> FakeRun:
    return build_run(tmp_path)
