"""The album check (persam.album_check): which photos are views, who stays present, and the real model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from persam import presence
from persam.album_check import COPY_SCORE, RATIO, VIEW_SCORE, Found, check, choose_views, describe
from persam.predictor import ImageEmbedding
from persam.settings import Settings

from .conftest import SHARED_DATA, require_data

COLOUR = np.full(presence.HISTOGRAM_BINS, 1.0 / presence.HISTOGRAM_BINS, np.float32)


class _Concept:
    """What describe reads of a concept: the model's input size and the reference cells' threshold."""

    class predictor:  # noqa: N801
        class model:  # noqa: N801
            img_size = 64

    settings = Settings()


def _cells(direction: int, n: int = 6, seed: int = 0) -> torch.Tensor:
    """(C, n) unit cells close to one axis of an 8-channel feature space: one object's parts."""
    g = torch.Generator().manual_seed(seed)
    cells = torch.zeros(8, n)
    cells[direction] = 1.0
    return F.normalize(cells + 0.05 * torch.randn(8, n, generator=g), dim=0)


def _found(key: str, score: float, direction: int = 0) -> Found:
    return Found(key, score, _cells(direction, seed=hash(key) % 100), COLOUR)


def test_views_are_the_best_sure_photos_but_not_the_reference_itself():
    found = [_found("ref-photo", 0.999), _found("a", 0.9), _found("b", 0.85), _found("c", 0.82),
             _found("d", 0.81), _found("unsure", VIEW_SCORE - 0.01)]
    assert [f.key for f in choose_views(found)] == ["a", "b", "c"]
    assert COPY_SCORE <= 0.999
    assert choose_views([_found("unsure", 0.79), _found("ref-photo", 0.99)]) == []


def test_a_look_alike_unlike_the_albums_sure_photos_turns_absent_and_the_objects_own_photos_stay():
    views = [_found("a", 0.9), _found("b", 0.88), _found("c", 0.85)]
    own = _found("own", 0.72)  # only just present on its own, but it looks like the views
    look_alike = _found("other dog", 0.82, direction=3)  # scores higher on its own: another object's parts
    verdicts = check(views + [own, look_alike], threshold=0.7)
    assert verdicts["own"].present and all(verdicts[k].present for k in "abc")
    assert not verdicts["other dog"].present
    # the bar: RATIO x the views' own album scores (each against the reference and the other views), the
    # way every photo's album score is measured; views alike score above their own scores here
    bar = RATIO * np.mean([verdicts[k].score for k in "abc"])
    assert bar > RATIO * np.mean([0.9, 0.88, 0.85])
    assert verdicts["other dog"].threshold == pytest.approx(bar)
    assert verdicts["other dog"].score < bar <= verdicts["own"].score


def test_the_bar_is_never_below_the_presence_threshold_and_without_views_nothing_changes():
    views = [_found("a", 0.8), _found("b", 0.8, direction=1)]  # unlike each other: their album scores are low
    verdicts = check(views + [_found("x", 0.7)], threshold=0.75)
    assert RATIO * verdicts["a"].score < 0.75 and verdicts["a"].threshold == pytest.approx(0.75)
    assert check([_found("x", 0.75), _found("y", 0.72, direction=2)], threshold=0.7) == {}


def test_a_large_object_keeps_a_regular_subsample_of_its_cells(monkeypatch):
    monkeypatch.setattr("persam.album_check.MAX_CELLS", 10)
    emb = ImageEmbedding(torch.randn(1, 8, 16, 16, generator=torch.Generator().manual_seed(0)), (64, 64), (64, 64))
    mask = np.ones((64, 64), bool)
    cells, _ = describe(_Concept, emb, np.zeros((64, 64, 3), np.uint8), mask)
    everything = F.normalize(emb.features[0].reshape(8, -1), dim=0)
    assert cells.shape == (8, 10)
    assert torch.allclose(cells[:, 0].float(), everything[:, 0], atol=1e-2)  # first and last cell kept
    assert torch.allclose(cells[:, -1].float(), everything[:, -1], atol=1e-2)


def test_describe_takes_a_found_object_as_a_reference_is_taken():
    emb = ImageEmbedding(torch.randn(1, 8, 16, 16, generator=torch.Generator().manual_seed(0)), (64, 64), (64, 64))
    mask = np.zeros((64, 64), bool)
    mask[:32, :32] = True
    image = np.zeros((64, 64, 3), np.uint8)
    image[:32, :32] = (200, 120, 40)
    cells, colour = describe(_Concept, emb, image, mask)
    assert cells.shape == (8, 64) and cells.dtype == torch.float16  # the top-left quarter's 8 x 8 cells
    assert torch.allclose(cells.float().norm(dim=0), torch.ones(64), atol=1e-2)
    assert colour.shape == (presence.HISTOGRAM_BINS,) and colour.sum() == pytest.approx(1.0, abs=1e-5)


def test_the_album_check_turns_the_ginger_dogs_absent_for_the_ginger_cat_with_mobilesam(mobilesam, tmp_path):
    """A ginger cat's concept over an album of its own photos and two ginger dogs': on their own the dogs'
    photos pass (same colours, and in MobileSAM's features similar parts); against the cat's sure photos they
    are turned absent, and the cat's stay."""
    import json
    import shutil

    from persam.album import AlbumSegmenter
    from persam.method import PerSAM
    from persam.runs import ImageRun

    album = require_data(SHARED_DATA / "dreambooth-album")
    photos = tmp_path / "photos"
    photos.mkdir()
    for subject, numbers in (("cat", ("01", "02", "03", "04")), ("dog2", ("04", "05")), ("dog", ("01",))):
        for n in numbers:
            shutil.copy(album / "Images" / subject / f"{n}.jpg", photos / f"{subject}_{n}.jpg")
    cat = PerSAM.from_reference(album / "Images" / "cat" / "00.jpg", album / "RefMasks" / "cat.png", sam=mobilesam)
    segmenter = AlbumSegmenter(cat)
    results = tmp_path / "out" / "results.jsonl"
    with ImageRun([photos], tmp_path / "out", overlays=False) as run:
        list(run.run(segmenter))
        searched = {r["mask"]: r["present"] for r in map(json.loads, results.read_text().splitlines())}
        summary = run.check_album(segmenter)
    records = {r["mask"]: r for r in map(json.loads, results.read_text().splitlines())}
    dogs = [m for m in records if m.startswith("dog")]
    assert any(searched[m] for m in dogs)  # a dog passes on its own ...
    assert list(summary.views.values())[0] >= 2
    assert {m for m, _ in summary.turned_absent} == {m for m in dogs if searched[m]}
    assert not any(records[m]["present"] for m in dogs)  # ... and not against the cat's sure photos
    assert all(records[m]["present"] for m in records if m.startswith("cat"))
