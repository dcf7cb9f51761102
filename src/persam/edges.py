"""Mask edges snapped to the photo's own edges: a guided filter of the mask, guided by the photo.

SAM's masks come from 256x256 logits upsampled 4x and more, so their outlines are smooth curves that cut
across the object's real outline (soft edges: boundary IoU well below IoU). The guided filter (He, Sun and
Tang, "Guided Image Filtering", ECCV 2010 / TPAMI 2013) fits, in every small window, the mask as a linear
function of the photo's brightness: where the window holds an image edge, the filtered mask follows it; where
it holds none, the mask is only smoothed. Thresholding the filtered mask at 0.5 gives the snapped mask
(:func:`snap_mask`); the filtered values themselves are a soft alpha for cut-outs (:func:`soft_alpha`). No
weights, a few box filters (integral images), and only around the mask's outline: pixels farther than two
radii from it keep their value.

Large photos are filtered at a working resolution of at most :data:`WORK_SIDE` pixels and the linear
coefficients upsampled (He and Sun, "Fast Guided Filter", 2015), so the filter's sums cost no more than on
a 512x512 image; the full-resolution work is a few element-wise passes over the mask's region.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    from .results import Result

#: window radius as a fraction of the image diagonal (3 px on an 854x480 frame); chosen on perseg-mini and
#: DAVIS one-shot frames (see the README's accuracy section)
RADIUS = 0.003
#: regularisation: how strong an image edge must be to bend the mask (guide brightness in [0, 1])
EPS = 1e-3
#: the filter's sums run at most at this many pixels on the longer side of the mask's region (the same
#: accuracy as 1024 on perseg-mini and DAVIS, at a quarter of the cost)
WORK_SIDE = 512


def box_mean(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean of ``x`` (H, W) over the (2 radius + 1)^2 window around every pixel, windows cut at the border."""
    return _box_1d(_box_1d(x, radius, 0), radius, 1)


def _box_1d(x: np.ndarray, radius: int, axis: int) -> np.ndarray:
    n = x.shape[axis]
    shape = list(x.shape)
    shape[axis] = 1
    c = np.concatenate([np.zeros(shape), np.cumsum(x, axis=axis, dtype=np.float64)], axis=axis)
    idx = np.arange(n)
    hi = np.minimum(idx + radius + 1, n)
    lo = np.maximum(idx - radius, 0)
    count = (hi - lo).astype(np.float64)
    count = count[:, None] if axis == 0 else count[None, :]
    return (np.take(c, hi, axis=axis) - np.take(c, lo, axis=axis)) / count


def guided_coefficients(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """The window-averaged linear coefficients (a, b) of the guided filter: output = a * guide + b (float64
    sums, as the variance is a difference of two of them)."""
    guide, src = guide.astype(np.float64), src.astype(np.float64)
    mean_i, mean_p = box_mean(guide, radius), box_mean(src, radius)
    cov = box_mean(guide * src, radius) - mean_i * mean_p
    var = box_mean(guide * guide, radius) - mean_i * mean_i
    a = cov / (var + eps)
    b = mean_p - a * mean_i
    return box_mean(a, radius), box_mean(b, radius)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float = EPS) -> np.ndarray:
    """``src`` (H, W) filtered under the guidance of ``guide`` (H, W, values in [0, 1]), float64."""
    a, b = guided_coefficients(guide, src, radius, eps)
    return a * guide + b


def _resize(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a float (H, W) array to (w, h) = ``size``."""
    return np.asarray(Image.fromarray(x.astype(np.float32), mode="F").resize(size, Image.Resampling.BILINEAR))


def edge_alpha(image: np.ndarray, mask: np.ndarray, radius: float = RADIUS, eps: float = EPS
               ) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The soft mask around ``mask``'s outline: ``(alpha, (y0, y1, x0, x1))``, alpha float32 in [0, 1] for the
    region ``[y0:y1, x0:x1]`` of the image (outside it the mask is empty). ``image`` HxWx3 uint8,
    ``mask`` HxW bool; ``radius`` a fraction of the image diagonal."""
    h, w = mask.shape
    if image.shape[:2] != (h, w):
        raise ValueError(f"image {image.shape[:2]} and mask {mask.shape} differ in size")
    r = max(1, round(radius * math.hypot(h, w)))
    ys, xs = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    if ys.size == 0:
        return np.zeros((0, 0), np.float32), (0, 0, 0, 0)
    grow = 2 * r + 2  # the filter changes pixels up to two radii from the outline
    y0, y1 = max(0, ys[0] - grow), min(h, ys[-1] + 1 + grow)
    x0, x1 = max(0, xs[0] - grow), min(w, xs[-1] + 1 + grow)
    crop = image[y0:y1, x0:x1]
    guide = (crop[:, :, 0].astype(np.float32) + crop[:, :, 1] + crop[:, :, 2]) * np.float32(1 / 765)
    src = mask[y0:y1, x0:x1].astype(np.float32)
    ch, cw = src.shape
    scale = max(1, math.ceil(max(ch, cw) / WORK_SIDE))
    if scale == 1:
        alpha = guided_filter(guide, src, r, eps)
    else:  # coefficients at a lower resolution, applied to the full-resolution guide
        size = (max(1, cw // scale), max(1, ch // scale))
        a, b = guided_coefficients(_resize(guide, size), _resize(src, size), max(1, round(r / scale)), eps)
        alpha = _resize(a, (cw, ch)) * guide + _resize(b, (cw, ch))
    return np.clip(alpha, 0.0, 1.0).astype(np.float32), (int(y0), int(y1), int(x0), int(x1))


def snap_mask(image: np.ndarray, mask: np.ndarray, radius: float = RADIUS, eps: float = EPS) -> np.ndarray:
    """``mask`` (HxW bool) with its outline moved onto the edges of ``image`` (HxWx3 uint8): the guided
    filter's alpha at 0.5. An empty mask stays empty."""
    alpha, (y0, y1, x0, x1) = edge_alpha(image, mask, radius, eps)
    out = np.zeros_like(mask, dtype=bool)
    out[y0:y1, x0:x1] = alpha > 0.5
    return out


def soft_alpha(image: np.ndarray, mask: np.ndarray, radius: float = RADIUS, eps: float = EPS) -> np.ndarray:
    """A soft alpha (HxW float32 in [0, 1]) for cutting ``mask`` out of ``image``: the guided filter's values
    along the outline (anti-aliased edges that follow the photo), 1 inside and 0 outside, held on the mask's
    side of 0.5 (>= 128/255 on the mask, <= 127/255 off it) so that thresholding it gives ``mask`` back."""
    mask = np.asarray(mask, dtype=bool)
    alpha = mask.astype(np.float32)
    soft, (y0, y1, x0, x1) = edge_alpha(image, mask, radius, eps)
    if soft.size:
        inside = mask[y0:y1, x0:x1]
        alpha[y0:y1, x0:x1] = np.where(inside, np.maximum(soft, 128 / 255), np.minimum(soft, 127 / 255))
    return alpha


def snapped_or_kept(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """:func:`snap_mask`, except that an empty mask, or a sliver the filter would erase, is kept as it is."""
    if not mask.any():
        return mask
    snapped = snap_mask(image, mask)
    return snapped if snapped.any() else mask


def snap_edges(image: np.ndarray, result: Result) -> Result:
    """``result`` with its mask snapped (:func:`snapped_or_kept`) to the edges of ``image``, in place; the
    seconds it took are ``result.timings["edges"]``. The low-res logits (what scores and overlaps read) are
    kept."""
    start = time.perf_counter()
    result.mask = snapped_or_kept(image, result.mask)
    result.timings["edges"] = time.perf_counter() - start
    return result


def snap_labels(image: np.ndarray, labels: np.ndarray, ids: list[int], radius: float = RADIUS,
                eps: float = EPS) -> np.ndarray:
    """A label image (HxW uint8 object ids, 0 = background) with every object's outline snapped
    (:func:`snap_mask`). Where two snapped objects meet, the pixel keeps its label from before."""
    out = np.zeros_like(labels)
    claims = np.zeros(labels.shape, dtype=np.uint8)
    snapped = {}
    for i in ids:
        mask = labels == i
        if mask.any():
            s = snap_mask(image, mask, radius, eps)
            snapped[i] = s if s.any() else mask
            claims += snapped[i]
    for i, s in snapped.items():
        out[s & (claims == 1)] = i
    contested = claims > 1
    out[contested] = labels[contested]
    return out
