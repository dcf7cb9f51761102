"""persam.refine on tiny random models: shapes, prompts and edge cases (empty masks, borders, tiny images)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from persam import PerSAM
from persam.method import Result
from persam.refine import (
    complete_parts,
    crop_box,
    drop_strays,
    peak_points,
    reference_views,
    segment_candidates,
    zoom_refine,
)
from persam.transforms import image_to_grid


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


def _disc(h: int, w: int, cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return (xx - cx) ** 2 + (yy - cy) ** 2 < r * r


@pytest.fixture(scope="module")
def persam(tiny_t) -> PerSAM:
    return PerSAM.from_reference(_image(120, 160), _disc(120, 160, 80, 60, 25), sam=tiny_t)


def _result(mask: np.ndarray, logits: torch.Tensor | None, points=None) -> Result:
    return Result(mask, 0.5, 0.5, 0.5, points or [(1.0, 1.0, 1)], None, {"encoder": 0.0, "decoder": 0.0}, logits)


@pytest.mark.parametrize("size", [(90, 140), (140, 90), (17, 23)])
def test_peaks_start_at_persams_click_and_stay_inside(persam, size):
    emb = persam.predictor.encode(_image(*size, seed=3))
    sim = persam.location_map(emb)
    points = peak_points(persam, emb, k=5, min_ratio=-10.0)  # any peak counts
    best = int(torch.argmax(sim))
    assert points[0] == (float(best % size[1]), float(best // size[1]))
    assert 1 <= len(points) <= 5
    for x, y in points:
        assert 0 <= x <= size[1] - 1 and 0 <= y <= size[0] - 1
    assert len(set(points)) == len(points)
    assert peak_points(persam, emb, k=1) == points[:1]


def test_one_candidate_is_plain_persam(persam):
    emb = persam.predictor.encode(_image(100, 130, seed=4))
    plain = persam.segment_embedding(emb)
    one = segment_candidates(persam, emb, k=1)
    assert one.mask.shape == (100, 130)
    assert np.array_equal(one.mask, plain.mask)
    assert one.points[0][:2] == plain.points[0][:2]


def test_candidates_keep_the_best_score(persam):
    emb = persam.predictor.encode(_image(100, 130, seed=5))
    best = segment_candidates(persam, emb, k=3, min_ratio=-10.0)
    first = segment_candidates(persam, emb, k=1)  # PerSAM's own click is always among the candidates
    assert best.score >= first.score - 1e-6
    assert best.mask.shape == (100, 130)
    with pytest.raises(ValueError, match="rank"):
        segment_candidates(persam, emb, rank="area")


@pytest.mark.parametrize(("box", "shape", "expected"), [
    ((10, 10, 19, 19), (100, 100), (0, 0, 64, 64)),  # grown to 64 px, centred, then shifted inside
    ((40, 40, 59, 59), (100, 100), (18, 18, 82, 82)),  # centred on the box
    ((0, 0, 9, 9), (100, 100), (0, 0, 64, 64)),  # at the corner: shifted, never negative
    ((90, 95, 99, 99), (100, 100), (36, 36, 100, 100)),  # at the far corner: shifted inside the image
    ((0, 0, 4, 4), (8, 6), (0, 0, 6, 8)),  # tiny image: the whole image
    ((100, 10, 299, 29), (300, 300), (0, 0, 300, 64)),  # wide box at the edge: 1.5x its width, the image
])
def test_crop_box(box, shape, expected):
    got = crop_box(box, shape, margin=0.25, min_size=64)
    h, w = shape
    x0, y0, x1, y1 = got
    assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
    assert x0 <= box[0] and y0 <= box[1] and x1 > box[2] and y1 > box[3]  # the box stays inside the crop
    assert (x1 - x0 >= min(64, w)) and (y1 - y0 >= min(64, h))
    assert got == expected


def test_zoom_leaves_an_empty_result_alone(persam):
    img = _image(80, 100, seed=6)
    emb = persam.predictor.encode(img)
    empty = _result(np.zeros((80, 100), bool), torch.full((256, 256), -5.0))
    assert zoom_refine(persam, emb, img, empty) is empty
    no_logits = _result(_disc(80, 100, 50, 40, 10), None)
    assert zoom_refine(persam, emb, img, no_logits) is no_logits


@pytest.mark.parametrize(("size", "where"), [((200, 300), (150, 100)), ((200, 300), (2, 2)),
                                             ((200, 300), (297, 197)), ((24, 20), (10, 12))])
def test_zoom_shapes_at_borders_and_on_tiny_images(persam, size, where):
    h, w = size
    img = _image(h, w, seed=7)
    emb = persam.predictor.encode(img)
    mask = _disc(h, w, *where, 12)
    grid = persam.segment_embedding(emb).logits.shape[-1]
    logits = torch.from_numpy(np.where(mask, 5.0, -5.0).astype(np.float32))[None, None]
    low = image_to_grid(logits, grid, persam.predictor.model.img_size, emb.input_size, -5.0)[0, 0]
    result = _result(mask, low, [(float(where[0]), float(where[1]), 1)])
    calls = []
    original = persam.predictor.encode

    def counting(image):
        calls.append(image.shape)
        return original(image)

    persam.predictor.encode = counting
    try:
        refined = zoom_refine(persam, emb, img, result)
    finally:
        del persam.predictor.encode
    assert refined.mask.shape == (h, w) and refined.mask.dtype == bool
    assert refined.logits is not None and refined.logits.shape == low.shape
    assert 0.0 <= refined.score <= 1.0
    assert len(calls) == 1 and calls[0][0] <= h and calls[0][1] <= w  # one encoder pass, on the crop
    x0, y0, x1, y1 = crop_box((min(np.flatnonzero(mask.any(0))), min(np.flatnonzero(mask.any(1))),
                               max(np.flatnonzero(mask.any(0))), max(np.flatnonzero(mask.any(1)))), (h, w))
    outside = np.ones((h, w), bool)
    outside[y0:y1, x0:x1] = False
    assert not refined.mask[outside].any()  # pasted back into its crop only
    assert refined.timings["zoom_encoder"] > 0


def test_zoom_skips_a_crop_that_is_the_whole_image(persam):
    img = _image(60, 60, seed=8)
    emb = persam.predictor.encode(img)
    mask = np.ones((60, 60), bool)
    result = _result(mask, torch.full((256, 256), 5.0))
    assert zoom_refine(persam, emb, img, result, max_fraction=0.9) is result


def test_reference_views(tiny_t):
    img = _image(200, 300, seed=9)
    small = _disc(200, 300, 60, 50, 15)
    embs, masks = reference_views(_predictor(tiny_t), img, small)
    assert len(embs) == len(masks) == 2  # the enlarged crop, the mirror
    crop, flipped = masks
    assert crop.sum() == small.sum() and crop.shape[0] < 200
    assert np.array_equal(flipped, small[:, ::-1])
    assert embs[0].original_size == crop.shape
    big = _disc(200, 300, 150, 100, 140)
    embs, masks = reference_views(_predictor(tiny_t), img, big, flip=False)
    assert embs == [] and masks == []  # a crop of most of the image is no enlargement
    assert reference_views(_predictor(tiny_t), img, np.zeros((200, 300), bool)) == ([], [])


def test_reference_views_make_a_working_persam(tiny_t):
    img = _image(150, 150, seed=10)
    mask = _disc(150, 150, 40, 40, 12)
    predictor = _predictor(tiny_t)
    embs, masks = reference_views(predictor, img, mask)
    p = PerSAM.from_embeddings(predictor, [predictor.encode(img), *embs], [mask, *masks], None)
    alone = PerSAM.from_embeddings(predictor, [predictor.encode(img)], [mask])
    assert p.part_features.shape[0] > alone.part_features.shape[0]  # the enlarged crop gives more cells
    assert p.segment(_image(90, 90, seed=11)).mask.shape == (90, 90)


def test_complete_parts_only_adds(persam):
    img = _image(120, 160, seed=12)
    emb = persam.predictor.encode(img)
    first = persam.segment_embedding(emb)
    for gain, parts in ((0.1, 0.1), (-2.0, 0.0)):  # the second forces a second click
        out = complete_parts(persam, emb, first, gain=gain, min_parts=parts, near=10.0)
        assert out.mask.shape == first.mask.shape
        assert not (first.mask & ~out.mask).any()  # a union: nothing of the first mask is lost
        assert 0.0 <= out.score <= 1.0
    empty = _result(np.zeros((120, 160), bool), torch.full((256, 256), -5.0))
    assert complete_parts(persam, emb, empty) is empty


def _predictor(sam):
    from persam import SamPredictor

    return SamPredictor(sam)


def _two_blobs(persam, emb, speck: bool = False) -> Result:
    """A result whose low-res logits hold blob A (40x40 cells, top left) and blob B (30x50, lower right)."""
    logits = torch.full((256, 256), -5.0)
    logits[20:60, 20:60] = 5.0
    logits[120:150, 150:200] = 5.0
    if speck:
        logits[100:102, 60:62] = 5.0  # 4 cells: under 2% of the mask
    return persam.make_result(emb, logits, torch.tensor(0.9), [(25.0, 25.0, 1)], None, 0.0)


def test_drop_strays_removes_the_other_blob_only_where_that_scores_higher(persam):
    emb = persam.predictor.encode(_image(120, 160, seed=13))  # input 768x1024: cells 0-191 x 0-255
    found = _two_blobs(persam, emb)
    a, b = (25, 25), (84, 109)  # (row, column) pixels of blob A (clicked) and blob B
    assert found.mask[a] and found.mask[b]

    def without_b(r):
        return 0.9 if not r.mask[b] else 0.5

    trimmed, score = drop_strays(persam, emb, found, without_b)
    assert score == 0.9 and trimmed.mask[a] and not trimmed.mask[b]
    assert np.array_equal(trimmed.mask, found.mask & trimmed.mask)  # only removed, nothing added
    kept, score = drop_strays(persam, emb, found, lambda r: 0.9 if r.mask[b] else 0.5)
    assert kept is found and score == 0.9

    clicked_b = _two_blobs(persam, emb)
    clicked_b.points = [(109.0, 84.0, 1)]
    trimmed, _ = drop_strays(persam, emb, clicked_b, lambda r: 0.9 if not r.mask[a] else 0.5)
    assert trimmed.mask[b] and not trimmed.mask[a]  # the clicked blob stays, even when smaller
    off = _two_blobs(persam, emb)
    off.points = [(1.0, 118.0, 1)]  # the click off the mask: the largest blob (A) stays
    assert drop_strays(persam, emb, off, lambda r: 0.9 if not r.mask[a] else 0.5)[0] is off


def test_drop_strays_leaves_one_blob_specks_and_empty_results_alone(persam):
    emb = persam.predictor.encode(_image(120, 160, seed=14))
    calls = []

    def score(r):
        calls.append(r)
        return 0.5

    with_speck = _two_blobs(persam, emb, speck=True)
    drop_strays(persam, emb, with_speck, score)
    assert len(calls) == 2  # the result itself and blob B; the speck is not worth a try
    logits = torch.full((256, 256), -5.0)
    logits[20:60, 20:60] = 5.0
    one = persam.make_result(emb, logits, torch.tensor(0.9), [(25.0, 25.0, 1)], None, 0.0)
    assert drop_strays(persam, emb, one, score) == (one, 0.5)
    empty = _result(np.zeros((120, 160), bool), torch.full((256, 256), -5.0))
    assert drop_strays(persam, emb, empty, score)[0] is empty
