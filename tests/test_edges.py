"""Mask edges snapped to the photo's edges (guided filter): the filter against its definition, and snapping."""

from __future__ import annotations

import numpy as np
import pytest

from persam import edges
from persam.edges import box_mean, edge_alpha, guided_filter, snap_edges, snap_labels, snap_mask
from persam.results import Result


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def _square_photo(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> tuple[np.ndarray, np.ndarray]:
    img = np.full((h, w, 3), 20, np.uint8)
    img[y0:y1, x0:x1] = (230, 200, 90)
    truth = np.zeros((h, w), bool)
    truth[y0:y1, x0:x1] = True
    return img, truth


@pytest.mark.parametrize("radius", [1, 2, 3])
def test_box_mean_is_the_window_mean_cut_at_the_border(radius):
    x = np.random.default_rng(radius).random((9, 13))
    got = box_mean(x, radius)
    for y in range(9):
        for c in range(13):
            window = x[max(0, y - radius): y + radius + 1, max(0, c - radius): c + radius + 1]
            assert got[y, c] == pytest.approx(window.mean(), abs=1e-12)


def test_guided_filter_keeps_flat_input_and_follows_the_guide_edge():
    rng = np.random.default_rng(0)
    guide = rng.random((20, 30))
    assert np.allclose(guided_filter(guide, np.full((20, 30), 0.7), 2), 0.7)
    step = np.zeros((20, 30))
    step[:, 15:] = 1.0
    out = guided_filter(step, step, 2, eps=1e-4)  # a sharp edge in the guide is kept, not blurred
    assert np.abs(out - step).max() < 0.05


@pytest.mark.parametrize("shift", [2, -2])  # SAM's mask 2 px short of the outline, or 2 px beyond it
def test_snap_mask_moves_the_outline_onto_the_photo_edge(shift):
    img, truth = _square_photo(120, 160, 10, 41, 10, 41)
    raw = np.zeros_like(truth)
    raw[10 + shift: 41 - shift, 10 + shift: 41 - shift] = True
    snapped = snap_mask(img, raw, radius=0.03)
    assert snapped.dtype == bool and snapped.shape == raw.shape
    assert _iou(raw, truth) < 0.8 and _iou(snapped, truth) > 0.95


def test_large_photos_are_filtered_at_the_working_resolution():
    h, w = 1300, 2200  # the mask's region is wider than WORK_SIDE: coefficients at a lower resolution
    img, truth = _square_photo(h, w, 200, 1100, 300, 1900)
    raw = np.zeros_like(truth)
    raw[206:1094, 306:1894] = True  # 6 px short on every side
    alpha, (y0, y1, x0, x1) = edge_alpha(img, raw, radius=0.01)
    assert alpha.shape == (y1 - y0, x1 - x0) and max(y1 - y0, x1 - x0) > edges.WORK_SIDE
    snapped = snap_mask(img, raw, radius=0.01)
    assert _iou(snapped, truth) > _iou(raw, truth) + 0.01


def test_pixels_far_from_the_outline_and_empty_masks_are_unchanged():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 255, (90, 120, 3), dtype=np.uint8)  # edges everywhere
    raw = np.zeros((90, 120), bool)
    raw[20:70, 30:90] = True
    snapped = snap_mask(img, raw, radius=0.02)  # r = 3: only pixels within 2r of the outline may change
    far = np.ones_like(raw)
    far[20 - 7: 70 + 7, 30 - 7: 90 + 7] = False
    far[20 + 7: 70 - 7, 30 + 7: 90 - 7] = True
    assert np.array_equal(snapped[far], raw[far])
    assert not snap_mask(img, np.zeros_like(raw)).any()
    with pytest.raises(ValueError, match="differ in size"):
        snap_mask(img, raw[:, :100])


def test_snap_edges_keeps_sams_mask_when_the_filter_would_erase_it():
    img = np.full((60, 80, 3), 128, np.uint8)
    tiny = np.zeros((60, 80), bool)
    tiny[30, 40] = True  # a one-pixel sliver on a flat photo: the filter alone would erase it
    assert not snap_mask(img, tiny).any()
    result = snap_edges(img, Result(tiny.copy(), 0.5, 0.5, 1.0, [], None, {}, None))
    assert np.array_equal(result.mask, tiny) and "edges" in result.timings


def test_snap_labels_snaps_every_object_and_keeps_contested_pixels():
    img, truth = _square_photo(120, 160, 10, 41, 10, 41)
    img[60:100, 90:140] = (40, 90, 230)  # a second object
    labels = np.zeros((120, 160), np.uint8)
    labels[12:39, 12:39] = 3  # 2 px short of its outline
    labels[60:100, 88:140] = 7  # 2 px too wide on the left
    out = snap_labels(img, labels, [3, 7], radius=0.03)
    assert set(np.unique(out)) == {0, 3, 7}
    assert _iou(out == 3, truth) > 0.95
    second = np.zeros_like(truth)
    second[60:100, 90:140] = True
    assert _iou(out == 7, second) > _iou(labels == 7, second)
    touching = np.zeros((120, 160), np.uint8)  # two objects side by side: their shared border stays theirs
    touching[20:60, 20:50], touching[20:60, 50:80] = 1, 2
    both = snap_labels(img, touching, [1, 2])
    assert (both[22:58, 49] == 1).all() and (both[22:58, 50] == 2).all()
