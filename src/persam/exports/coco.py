"""COCO instance annotations of a run (``OUT/coco.json``), for CVAT, FiftyOne, Label Studio, detectron2...

Categories are the run's concepts; every present instance is one annotation whose ``segmentation`` is
COCO's compressed RLE (made by pycocotools, so every COCO reader decodes it to exactly our mask), with
``bbox``, ``area``, ``score`` and ``iscrowd`` 0.

``file_name`` is the photo's path relative to the deepest folder holding all the run's photos (the folder
given to ``persam segment``, in the usual case), with "/" separators: that is what both main consumers
match on. CVAT matches annotations to the task's images by that relative path (then by base name), and a
machine path like ``/home/me/...`` would never match; FiftyOne joins it to ``data_path``, so
``fo.Dataset.from_dir(dataset_type=fo.types.COCODetectionDataset, data_path=<root>, labels_path=coco.json)``
loads the album. The root itself is in ``info["image_root"]``. Photos on different drives (no common
folder) get absolute paths instead.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

import numpy as np
from pycocotools import mask as mask_utils

from ..io import atomic_open
from .records import Instance, Photo

FILENAME = "coco.json"


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """COCO compressed RLE of an HxW mask, with ``counts`` as a str so that it is JSON."""
    rle = mask_utils.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("utf-8")}


def annotation(mask: np.ndarray, *, ann_id: int, image_id: int, category_id: int, score: float) -> dict[str, Any]:
    """One COCO annotation for one instance mask (bbox and area measured by pycocotools on the RLE)."""
    rle = encode_rle(mask)
    coded = {"size": rle["size"], "counts": rle["counts"].encode("utf-8")}
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": category_id,
        "segmentation": rle,
        "area": int(mask_utils.area(coded)),
        "bbox": [round(float(v), 2) for v in mask_utils.toBbox(coded)],
        "score": round(float(score), 4),
        "iscrowd": 0,
    }


def image_file_name(image: Path, root: Path | None) -> str:
    """The path stored in ``file_name``: relative to ``root`` with "/" separators, else absolute."""
    if root is not None:
        try:
            return Path(os.path.abspath(image)).relative_to(root).as_posix()
        except ValueError:
            pass
    return Path(os.path.abspath(image)).as_posix()


class CocoWriter:
    """Builds coco.json one photo at a time; annotations are spooled to a temporary file, not kept in memory."""

    def __init__(self, out_dir: str | os.PathLike, image_root: Path | None) -> None:
        self.path = Path(out_dir) / FILENAME
        self.root = image_root
        self.images: list[dict[str, Any]] = []
        self.categories: dict[str, int] = {}
        self._spool: IO[str] = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        self._n_ann = 0

    def category(self, concept: str) -> int:
        return self.categories.setdefault(concept, len(self.categories) + 1)

    def add(self, photo: Photo, labels: np.ndarray, instances: list[Instance]) -> None:
        """Add the photo (even when nothing was found: an image without annotations) and its instances."""
        for listed in photo.instances or []:
            self.category(listed.concept)  # concepts never found still become categories
        image_id = len(self.images) + 1
        height, width = labels.shape
        self.images.append(
            {"id": image_id, "file_name": image_file_name(photo.image, self.root), "width": width, "height": height}
        )
        for inst in instances:
            self._n_ann += 1
            ann = annotation(
                labels == inst.id,
                ann_id=self._n_ann,
                image_id=image_id,
                category_id=self.category(inst.concept),
                score=inst.score,
            )
            self._spool.write(("," if self._n_ann > 1 else "") + json.dumps(ann, separators=(",", ":")) + "\n")

    def finish(self) -> Path:
        """Write coco.json atomically and return its path."""
        info = {
            "description": "persam personalized segmentation",
            "date_created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "image_root": self.root.as_posix() if self.root is not None else None,
        }
        categories = [{"id": i, "name": name, "supercategory": ""} for name, i in self.categories.items()]
        try:
            with atomic_open(self.path, "w") as out:
                out.write('{"info":' + json.dumps(info, ensure_ascii=False) + ',"licenses":[],\n')
                out.write('"categories":' + json.dumps(categories, ensure_ascii=False) + ",\n")
                out.write('"images":[\n')
                out.write(",\n".join(json.dumps(im, ensure_ascii=False) for im in self.images))
                out.write('\n],\n"annotations":[\n')
                self._spool.seek(0)
                for line in self._spool:
                    out.write(line)
                out.write("]}\n")
        finally:
            self.close()
        return self.path

    def close(self) -> None:
        self._spool.close()


def write_coco(out_dir: str | os.PathLike, **options: Any) -> Path:
    """coco.json for the run in ``out_dir`` (photos whose mask cannot be read are skipped with a notice)."""
    from . import write_exports

    return write_exports(out_dir, ["coco"], **options)["coco"]
