"""Metrics: hand-computable cases, plus the fast morphology checked against naive reference loops."""

from __future__ import annotations

import math

import numpy as np
import pytest

from persam.metrics import (
    IoUAccumulator,
    boundary_dilation,
    boundary_f_measure,
    boundary_intersection_union,
    boundary_iou,
    dilate_disk,
    erode,
    intersection_union,
    iou,
    jf_summary,
    mask_boundary,
    region_similarity,
    seg2bmap,
)


def square(shape: tuple[int, int], top: int, left: int, size: int) -> np.ndarray:
    m = np.zeros(shape, dtype=bool)
    m[top : top + size, left : left + size] = True
    return m


def blob(shape: tuple[int, int], cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def naive_reference_erode(mask: np.ndarray, iterations: int) -> np.ndarray:
    """The Boundary IoU reference, spelled out: pad 1 px of zeros, 3x3 erode n times, crop.

    cv2.erode's default border never erodes, so out-of-array neighbours are ignored here.
    """
    m = np.pad(mask.astype(bool), 1, constant_values=False)
    h, w = m.shape
    for _ in range(iterations):
        new = m.copy()
        for y in range(h):
            for x in range(w):
                if m[y, x]:
                    new[y, x] = m[max(0, y - 1) : y + 2, max(0, x - 1) : x + 2].all()
        m = new
    return m[1:-1, 1:-1]


def naive_dilate_disk(mask: np.ndarray, radius: int) -> np.ndarray:
    h, w = mask.shape
    out = np.zeros_like(mask, dtype=bool)
    for y, x in zip(*np.nonzero(mask), strict=True):
        for dy in range(-radius, radius + 1):
            for dx in range(-radius, radius + 1):
                if dy * dy + dx * dx <= radius * radius and 0 <= y + dy < h and 0 <= x + dx < w:
                    out[y + dy, x + dx] = True
    return out


# ------------------------------------------------------------------ IoU


def test_iou_identical_disjoint_and_shifted_square():
    a = square((40, 40), 10, 10, 10)
    assert iou(a, a) == 1.0
    assert iou(a, square((40, 40), 25, 25, 10)) == 0.0
    shifted = square((40, 40), 10, 15, 10)
    assert intersection_union(a, shifted) == (50, 150)
    assert iou(a, shifted) == 50 / 150


def test_iou_empty_cases_and_dtypes():
    empty = np.zeros((8, 8), dtype=bool)
    assert iou(empty, empty) == 1.0
    assert boundary_iou(empty, empty) == 1.0
    assert iou(empty, square((8, 8), 0, 0, 2)) == 0.0
    a = square((8, 8), 2, 2, 3)
    assert iou(a.astype(np.uint8) * 255, a) == 1.0  # 0/255 PNG masks are accepted


def test_shape_errors():
    with pytest.raises(ValueError):
        intersection_union(np.zeros((4, 4), bool), np.zeros((4, 5), bool))
    with pytest.raises(ValueError):
        iou(np.zeros((1, 4, 4), bool), np.zeros((1, 4, 4), bool))
    with pytest.raises(ValueError):
        region_similarity(np.zeros((4, 4), bool), np.zeros((4, 4), bool), void=np.zeros((3, 4), bool))


# ------------------------------------------------------------------ Boundary IoU


def test_boundary_dilation():
    assert boundary_dilation(100, 100) == 3  # 0.02 * 141.4 = 2.83
    assert boundary_dilation(1080, 1920) == 44  # 0.02 * 2202.9 = 44.06
    assert boundary_dilation(10, 10) == 1  # round(0.28) = 0 -> at least 1
    assert boundary_dilation(100, 100, ratio=0.1) == 14


def test_filled_square_boundary_is_its_ring():
    m = square((100, 100), 40, 40, 20)
    b = mask_boundary(m, 1)
    assert b.sum() == 20 * 20 - 18 * 18 == 76
    ring = m & ~square((100, 100), 41, 41, 18)
    assert np.array_equal(b, ring)


def test_image_border_counts_as_boundary():
    m = square((50, 50), 0, 0, 20)  # touches the top and left edges
    b = mask_boundary(m, 1)
    assert b[0, :20].all() and b[:20, 0].all()
    assert b.sum() == 76
    full = np.ones((10, 12), dtype=bool)
    assert mask_boundary(full, 2).sum() == 10 * 12 - 6 * 8


@pytest.mark.parametrize("dilation", [1, 2, 3, 5])
def test_fast_erosion_matches_reference_loop(dilation):
    rng = np.random.default_rng(dilation)
    for density in (0.5, 0.85, 0.97):
        m = rng.random((23, 31)) < density
        assert np.array_equal(erode(m, dilation), naive_reference_erode(m, dilation))
    m = blob((30, 30), 12, 14, 9) | square((30, 30), 20, 0, 10)
    assert np.array_equal(erode(m, dilation), naive_reference_erode(m, dilation))


def test_boundary_iou_is_stricter_than_iou_for_a_shifted_blob():
    a = blob((200, 200), 100, 100, 60)
    b = blob((200, 200), 100, 106, 60)
    assert boundary_iou(a, a) == 1.0
    assert 0 < boundary_iou(a, b) < iou(a, b) < 1


def test_accumulator_sums_counts_not_ratios():
    shape = (100, 100)
    acc = IoUAccumulator()
    with pytest.raises(ValueError):
        _ = acc.iou
    # target 1: 10x10 square vs its copy shifted 5 px right -> I=50, U=150
    a, a_shift = square(shape, 20, 20, 10), square(shape, 20, 25, 10)
    # dilation on 100x100 is 3: each band is 100 - 4*4 = 84 px; the two bands share the 10x5 overlap minus
    # a 4x2 piece of each inner square -> 50 - 16 = 34; union 84 + 84 - 34 = 134
    assert boundary_intersection_union(a, a_shift) == (34, 134)
    acc.add(a, a_shift)
    # target 2: a 4x4 square, predicted exactly; a 4x4 square is all band (I = U = 16 both ways)
    c = square(shape, 60, 60, 4)
    acc.add(c, c)
    assert acc.count == 2
    assert (acc.intersection, acc.union) == (66, 166)
    assert acc.iou == 66 / 166  # not (1/3 + 1) / 2
    assert acc.biou == (34 + 16) / (134 + 16)


# ------------------------------------------------------------------ DAVIS J and F


def test_region_similarity_and_void():
    gt = square((40, 40), 10, 10, 10)
    assert region_similarity(gt, gt) == 1.0
    assert region_similarity(np.zeros_like(gt), gt) == 0.0
    assert region_similarity(np.zeros_like(gt), np.zeros_like(gt)) == 1.0
    pred = gt.copy()
    pred[30:35, 30:35] = True  # a false positive ...
    assert region_similarity(pred, gt) == 100 / 125
    void = square((40, 40), 28, 28, 10)  # ... inside void pixels is not counted
    assert region_similarity(pred, gt, void=void) == 1.0


def test_seg2bmap_outline():
    m = square((10, 10), 3, 3, 4)  # rows/cols 3..6
    b = seg2bmap(m)
    # differs from right/bottom/bottom-right neighbour: the pixels just above and left of the square
    # (row 2 / col 2 incl. the corner) and its own last row and column
    expected = np.zeros_like(m)
    expected[2, 2:7] = True
    expected[2:7, 2] = True
    expected[6, 3:7] = True
    expected[3:7, 6] = True
    assert np.array_equal(b, expected)
    # a full image has no boundary: the frame is not an edge in DAVIS
    assert not seg2bmap(np.ones((5, 6), bool)).any()


@pytest.mark.parametrize("radius", [0, 1, 2, 4])
def test_disk_dilation_matches_naive(radius):
    rng = np.random.default_rng(radius)
    m = rng.random((19, 27)) < 0.03
    m[0, 0] = m[-1, -1] = True
    assert np.array_equal(dilate_disk(m, radius), naive_dilate_disk(m, radius))


def test_f_measure_identical_and_empty():
    gt = blob((60, 80), 30, 40, 15)
    empty = np.zeros_like(gt)
    assert boundary_f_measure(gt, gt) == 1.0
    assert boundary_f_measure(empty, gt) == 0.0
    assert boundary_f_measure(gt, empty) == 0.0
    assert boundary_f_measure(empty, empty) == 1.0


def test_f_measure_tolerance():
    gt = blob((120, 120), 60, 60, 30)
    one_px = np.roll(gt, 1, axis=1)
    assert boundary_f_measure(one_px, gt, bound_th=2) == 1.0
    assert boundary_f_measure(one_px, gt, bound_th=1) == 1.0
    # any bound_th in (0, 1) gives a tolerance of at least 1 px, so only 0 makes a 1-px shift count
    assert boundary_f_measure(one_px, gt, bound_th=0) < 1.0

    # the default 0.008 * diagonal: 3 px on 200x200 (misses a 5 px shift), 12 px on 1000x1000 (does not)
    small = blob((200, 200), 100, 100, 50)
    assert boundary_f_measure(np.roll(small, 5, axis=1), small) < 1.0
    assert boundary_f_measure(np.roll(small, 5, axis=1), small, bound_th=5) == 1.0
    big = blob((1000, 1000), 500, 500, 250)
    assert math.ceil(0.008 * math.hypot(1000, 1000)) == 12
    assert boundary_f_measure(np.roll(big, 5, axis=1), big) == 1.0


def test_f_measure_void():
    gt = square((50, 50), 10, 10, 15)
    pred = gt.copy()
    pred[35:45, 35:45] = True  # spurious blob
    assert boundary_f_measure(pred, gt, bound_th=1) < 1.0
    void = square((50, 50), 33, 33, 14)
    assert boundary_f_measure(pred, gt, void=void, bound_th=1) == 1.0


def test_jf_summary():
    s = jf_summary([1.0, 0.5], [0.8, 0.6])
    assert s["J"] == 0.75 and s["F"] == pytest.approx(0.7) and s["J&F"] == pytest.approx(0.725)
    with pytest.raises(ValueError):
        jf_summary([], [])
    with pytest.raises(ValueError):
        jf_summary([1.0], [1.0, 0.5])
