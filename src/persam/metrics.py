"""Evaluation metrics for the benchmarks, matching the reference implementations bit for bit.

Protocol (see the data README):

* Image benchmarks (PerSeg, COCO-20i, FSS-1000): IoU per object is the *sum* of intersections over the
  sum of unions across that object's targets; mIoU is the mean over objects. bIoU is the same with
  Boundary IoU (Cheng et al. 2021, ``boundary_iou_evaluation``), whose boundary band is 2% of the image
  diagonal wide. :class:`IoUAccumulator` keeps those sums for one object.
* DAVIS: J (:func:`region_similarity`, the ``db_eval_iou`` of the official toolkit) and F
  (:func:`boundary_f_measure`, its ``f_measure``) per frame, averaged over frames; J&F is their mean
  (:func:`jf_summary`).

Only numpy is needed: the morphology that the references do with OpenCV and scikit-image is done here
with running sums, whose cost does not grow with the structuring element (the Boundary IoU erosion is
~45 px wide on a 1080p frame). Masks are 2-D arrays; anything non-zero is foreground.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "IoUAccumulator",
    "boundary_dilation",
    "boundary_f_measure",
    "boundary_intersection_union",
    "boundary_iou",
    "dilate_disk",
    "erode",
    "intersection_union",
    "iou",
    "jf_summary",
    "mask_boundary",
    "region_similarity",
    "seg2bmap",
]


def _as_mask(mask: np.ndarray, name: str = "mask") -> np.ndarray:
    """A 2-D bool view of ``mask`` (non-zero is foreground), so callers may pass uint8 or 0/255 PNGs."""
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (H, W) array, got shape {m.shape}")
    return m if m.dtype == np.bool_ else m != 0


def _as_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, g = _as_mask(pred, "pred"), _as_mask(gt, "gt")
    if p.shape != g.shape:
        raise ValueError(f"pred and gt shapes differ: {p.shape} vs {g.shape}")
    return p, g


def _window_sum(a: np.ndarray, radius: int, axis: int) -> np.ndarray:
    """Sum of ``a`` over the window [i - radius, i + radius] along ``axis``, treating outside as 0.

    Done with a cumulative sum, so the cost is O(H*W) whatever the radius.
    """
    n = a.shape[axis]
    c = np.cumsum(a, axis=axis, dtype=np.int32)
    zero_shape = list(a.shape)
    zero_shape[axis] = 1
    c = np.concatenate([np.zeros(zero_shape, dtype=np.int32), c], axis=axis)  # c[k] = sum(a[:k])
    idx = np.arange(n)
    hi = np.minimum(idx + radius + 1, n)
    lo = np.maximum(idx - radius, 0)
    return np.take(c, hi, axis=axis) - np.take(c, lo, axis=axis)


# --------------------------------------------------------------------------------------------------
# IoU and Boundary IoU (image benchmarks)
# --------------------------------------------------------------------------------------------------


def intersection_union(pred: np.ndarray, gt: np.ndarray) -> tuple[int, int]:
    """Pixel counts |pred & gt| and |pred | gt|; kept as counts so they can be summed per object."""
    p, g = _as_pair(pred, gt)
    return int(np.count_nonzero(p & g)), int(np.count_nonzero(p | g))


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """IoU of one pair; 1.0 when both masks are empty (nothing to find, nothing found)."""
    inter, union = intersection_union(pred, gt)
    return 1.0 if union == 0 else inter / union


def erode(mask: np.ndarray, dilation: int) -> np.ndarray:
    """Erosion by a (2d+1)x(2d+1) square with everything outside the image counted as background.

    This equals the Boundary IoU reference: pad by one pixel of zeros, ``cv2.erode`` with a 3x3 kernel
    ``d`` times (OpenCV's erode border does not erode), crop. ``d`` iterations of a 3x3 square are one
    (2d+1) square, and the zero ring reaches pixel ``i`` of the image after ``i + 1`` iterations, exactly
    as an infinite zero padding would. The square is separable, so it is two 1-D window tests.
    """
    m = _as_mask(mask)
    if dilation < 0:
        raise ValueError(f"dilation must be >= 0, got {dilation}")
    if dilation == 0:
        return m.copy()
    full = 2 * dilation + 1
    rows = _window_sum(m, dilation, axis=1) == full
    return _window_sum(rows, dilation, axis=0) == full


def mask_boundary(mask: np.ndarray, dilation: int) -> np.ndarray:
    """Boundary IoU's boundary band: the mask minus its erosion by ``dilation`` px.

    Pixels within ``dilation`` of the image border are boundary too (the reference pads with zeros so
    that objects cut by the frame are not rewarded for their straight crop edge).
    """
    m = _as_mask(mask)
    return m & ~erode(m, dilation)


def boundary_dilation(h: int, w: int, ratio: float = 0.02) -> int:
    """Band width in pixels: ``ratio`` of the image diagonal, rounded as the reference does, at least 1."""
    return max(1, int(round(ratio * math.sqrt(h * h + w * w))))


def boundary_intersection_union(
    pred: np.ndarray, gt: np.ndarray, dilation_ratio: float = 0.02
) -> tuple[int, int]:
    """Intersection and union of the two boundary bands, as counts to be summed per object."""
    p, g = _as_pair(pred, gt)
    d = boundary_dilation(*p.shape, ratio=dilation_ratio)
    return intersection_union(mask_boundary(p, d), mask_boundary(g, d))


def boundary_iou(pred: np.ndarray, gt: np.ndarray, dilation_ratio: float = 0.02) -> float:
    """Boundary IoU of one pair; 1.0 when both are empty (the reference would divide 0 by 0)."""
    inter, union = boundary_intersection_union(pred, gt, dilation_ratio)
    return 1.0 if union == 0 else inter / union


class IoUAccumulator:
    """Running sums of intersections and unions over one object's targets.

    The protocol scores an object by sum(I) / sum(U), not by the mean of per-target ratios, so large
    targets weigh more; keeping counts is what makes that possible. Use one accumulator per object and
    average ``.iou`` / ``.biou`` over objects for mIoU / mbIoU.
    """

    def __init__(self, dilation_ratio: float = 0.02) -> None:
        self.dilation_ratio = dilation_ratio
        self.intersection = 0
        self.union = 0
        self.boundary_intersection = 0
        self.boundary_union = 0
        self._count = 0

    def add(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """Accumulate one (prediction, ground truth) pair."""
        inter, union = intersection_union(pred, gt)
        b_inter, b_union = boundary_intersection_union(pred, gt, self.dilation_ratio)
        self.intersection += inter
        self.union += union
        self.boundary_intersection += b_inter
        self.boundary_union += b_union
        self._count += 1

    @property
    def count(self) -> int:
        """Number of pairs added."""
        return self._count

    def _ratio(self, inter: int, union: int) -> float:
        if self._count == 0:
            raise ValueError("IoUAccumulator is empty: add() at least one pair first")
        return 1.0 if union == 0 else inter / union

    @property
    def iou(self) -> float:
        """sum(I) / sum(U); 1.0 if every pair was empty on both sides. ValueError when nothing was added."""
        return self._ratio(self.intersection, self.union)

    @property
    def biou(self) -> float:
        """Boundary IoU from the summed boundary counts, as :attr:`iou`."""
        return self._ratio(self.boundary_intersection, self.boundary_union)

    def __repr__(self) -> str:
        if self._count == 0:
            return "IoUAccumulator(count=0)"
        return f"IoUAccumulator(count={self._count}, iou={self.iou:.4f}, biou={self.biou:.4f})"


# --------------------------------------------------------------------------------------------------
# DAVIS J and F
# --------------------------------------------------------------------------------------------------


def _void_mask(void: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    if void is None:
        return np.zeros(shape, dtype=bool)
    v = _as_mask(void, "void")
    if v.shape != shape:
        raise ValueError(f"void shape {v.shape} differs from the masks' {shape}")
    return v


def region_similarity(pred: np.ndarray, gt: np.ndarray, void: np.ndarray | None = None) -> float:
    """DAVIS J (``db_eval_iou``): IoU over the non-void pixels; 1.0 when that union is empty."""
    p, g = _as_pair(pred, gt)
    keep = ~_void_mask(void, p.shape)
    inter = np.count_nonzero(p & g & keep)
    union = np.count_nonzero((p | g) & keep)
    return 1.0 if union == 0 else inter / union


def seg2bmap(mask: np.ndarray) -> np.ndarray:
    """DAVIS's 1-px boundary map (``_seg2bmap`` at the image's own size).

    A pixel is boundary if it differs from its right, bottom or bottom-right neighbour; on the last row
    only the right neighbour is compared, on the last column only the bottom one, and the bottom-right
    corner is never boundary. So, unlike Boundary IoU, the image frame itself does not create boundary.
    """
    seg = _as_mask(mask)
    e = np.zeros_like(seg)
    s = np.zeros_like(seg)
    se = np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = (seg ^ e) | (seg ^ s) | (seg ^ se)
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = False
    return b


def dilate_disk(mask: np.ndarray, radius: float) -> np.ndarray:
    """Binary dilation by the disk {(dy, dx): dy^2 + dx^2 <= radius^2} (skimage ``disk``), outside = 0.

    The disk is a stack of horizontal segments, one per ``dy``; each segment is a 1-D running-sum test,
    so the cost is O(H*W*radius) instead of O(H*W*radius^2).
    """
    m = _as_mask(mask)
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    h, w = m.shape
    r_int = int(math.floor(radius))
    out = np.zeros_like(m)
    by_half_width: dict[int, np.ndarray] = {}
    for dy in range(-r_int, r_int + 1):
        half = int(math.floor(math.sqrt(radius * radius - dy * dy)))
        row_dil = by_half_width.get(half)
        if row_dil is None:
            row_dil = by_half_width[half] = _window_sum(m, half, axis=1) > 0
        # out[y] |= row_dil[y + dy] for rows inside the image
        if dy >= 0:
            if dy < h:
                out[: h - dy] |= row_dil[dy:]
        elif -dy < h:
            out[-dy:] |= row_dil[: h + dy]
    return out


def boundary_f_measure(
    pred: np.ndarray, gt: np.ndarray, void: np.ndarray | None = None, bound_th: float = 0.008
) -> float:
    """DAVIS F (``f_measure``): boundary precision/recall F-score with a tolerance of ``bound_pix`` px.

    ``bound_pix`` is ``bound_th`` itself when >= 1, else ``ceil(bound_th * image diagonal)``. Void pixels
    are removed from both masks before their boundaries are taken, as in the toolkit. Empty cases follow
    DAVIS: both boundaries empty -> 1, exactly one empty -> 0.
    """
    p, g = _as_pair(pred, gt)
    keep = ~_void_mask(void, p.shape)
    bound_pix = (
        bound_th if bound_th >= 1 else math.ceil(bound_th * math.sqrt(p.shape[0] ** 2 + p.shape[1] ** 2))
    )

    fg_boundary = seg2bmap(p & keep)
    gt_boundary = seg2bmap(g & keep)
    n_fg = int(np.count_nonzero(fg_boundary))
    n_gt = int(np.count_nonzero(gt_boundary))
    if n_fg == 0 and n_gt == 0:
        return 1.0
    if n_fg == 0 or n_gt == 0:
        return 0.0  # DAVIS sets (P, R) to (1, 0) or (0, 1), whose F is 0

    precision = np.count_nonzero(fg_boundary & dilate_disk(gt_boundary, bound_pix)) / n_fg
    recall = np.count_nonzero(gt_boundary & dilate_disk(fg_boundary, bound_pix)) / n_gt
    if precision + recall == 0:
        return 0.0
    return float(2 * precision * recall / (precision + recall))


def jf_summary(j_values: Sequence[float], f_values: Sequence[float]) -> dict[str, float]:
    """Means of per-frame J and F and their average J&F (DAVIS reports J&F = (mean J + mean F) / 2)."""
    j = np.asarray(j_values, dtype=np.float64).ravel()
    f = np.asarray(f_values, dtype=np.float64).ravel()
    if j.size == 0 or f.size == 0:
        raise ValueError("jf_summary needs at least one J and one F value")
    if j.size != f.size:
        raise ValueError(f"got {j.size} J values but {f.size} F values")
    j_mean, f_mean = float(j.mean()), float(f.mean())
    return {"J&F": (j_mean + f_mean) / 2, "J": j_mean, "F": f_mean}
