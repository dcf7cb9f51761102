"""coco.json must decode, in pycocotools itself, to exactly the masks the run wrote."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pycocotools.coco import COCO

from persam.exports import write_exports
from persam.exports.coco import annotation, encode_rle, image_file_name

from .conftest import WEIRD

# pycocotools' own decoder, with numpy 2
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def test_round_trip_is_exact(fake_run):
    path = write_exports(fake_run.out, ["coco"])["coco"]
    assert path == fake_run.out / "coco.json"
    coco = COCO(str(path))
    names = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
    assert sorted(names.values()) == ["ball", "cat", "duck", "object", "sneaker"]

    by_file = {img["file_name"]: img for img in coco.loadImgs(coco.getImgIds())}
    assert len(by_file) == len(fake_run.labels)
    n_instances = 0
    for mask_rel, labels in fake_run.labels.items():
        rel = fake_run.images[mask_rel].relative_to(fake_run.photos).as_posix()
        img = by_file[rel]  # file_name: relative to the common root of the photos
        assert (img["width"], img["height"]) == (labels.shape[1], labels.shape[0])
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[img["id"]]))
        expected = fake_run.concepts[mask_rel]
        assert sorted(names[a["category_id"]] for a in anns) == sorted(expected.values())
        for ann in anns:
            (inst_id,) = [i for i, c in expected.items() if c == names[ann["category_id"]]]
            truth = labels == inst_id
            assert np.array_equal(coco.annToMask(ann).astype(bool), truth)
            assert ann["iscrowd"] == 0 and ann["area"] == int(truth.sum())
            ys, xs = np.nonzero(truth)
            assert ann["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
            assert 0 < ann["score"] <= 1 and isinstance(ann["segmentation"]["counts"], str)
            n_instances += 1
    assert n_instances == len(coco.getAnnIds()) == 6
    assert not coco.getAnnIds(imgIds=[by_file["duck/02.jpg"]["id"]])  # not found: image, no annotation
    assert f"cat/{WEIRD}.jpg" in by_file
    info = json.loads(path.read_text(encoding="utf-8"))["info"]
    assert info["image_root"] == fake_run.photos.as_posix()


def test_scores_come_from_the_instances(fake_run):
    coco = COCO(str(write_exports(fake_run.out, ["coco"])["coco"]))
    scores = {coco.loadCats(a["category_id"])[0]["name"]: a["score"] for a in coco.loadAnns(coco.getAnnIds())}
    assert scores["sneaker"] == 0.83 and scores["ball"] == 0.41 and scores["object"] == 0.55


def test_annotation_of_awkward_masks():
    mask = np.zeros((7, 5), dtype=bool)
    mask[0, 0] = mask[6, 4] = True  # corners, not contiguous
    ann = annotation(mask, ann_id=3, image_id=2, category_id=1, score=0.5)
    assert ann["bbox"] == [0, 0, 5, 7] and ann["area"] == 2
    rle = encode_rle(mask)
    assert rle["size"] == [7, 5] and isinstance(rle["counts"], str)
    json.dumps(ann)


def test_file_name_falls_back_to_absolute(tmp_path):
    photo = tmp_path / "a" / "b.jpg"
    assert image_file_name(photo, tmp_path) == "a/b.jpg"
    assert image_file_name(photo, None) == photo.as_posix()
    assert image_file_name(photo, tmp_path / "elsewhere") == photo.as_posix()
