"""The outline a user gets: SAM's mask at the concept's own logit level, then snapped to the photo's edges.

SAM cuts its mask logits at 0, but where an object's outline lies is a matter of convention: one data set's
human masks are generous (a dog's fur, a shoe's laces), another's tight. A concept learns its *level* from
its own reference, as PerSAM-F learns its fusion weights there: the concept segments its reference image, and
of the levels :data:`LEVELS` the one whose mask (snapped to edges, as targets will be) best matches the
reference mask by boundary IoU is kept (:func:`fit_level`); every mask the concept then delivers is cut at
that level (:func:`finish`). Only the delivered outline moves: the search, its scores and the presence
decision read SAM's own mask at 0, so which photos hold the object does not change.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .edges import snap_edges, snapped_or_kept
from .metrics import boundary_dilation, intersection_union, mask_boundary

if TYPE_CHECKING:
    from .method import PerSAM
    from .predictor import ImageEmbedding
    from .results import Result

#: the logit levels a concept chooses from (SAM's own cut is 0); chosen on perseg-mini and DAVIS one-shot
#: frames (see the README's accuracy section)
LEVELS = (1.0, 0.5, 0.0, -0.5, -1.0, -1.5, -2.0)


def mask_at_level(persam: PerSAM, emb: ImageEmbedding, result: Result, level: float) -> np.ndarray:
    """``result``'s mask with its outline at logit ``level`` instead of 0 (HxW bool).

    The result's low-res logits, upsampled, cut at ``level``; a mask that was more than one decoding (parts
    joined: their union) keeps what it held when the level grows it (level < 0) and loses nothing outside
    it when the level shrinks it, so joined parts stay joined.
    """
    if level == 0 or result.logits is None or not result.mask.any():
        return result.mask
    return _cut(_full_logits(persam, emb, result), result.mask, level)


def _full_logits(persam: PerSAM, emb: ImageEmbedding, result: Result) -> np.ndarray:
    """``result``'s low-res logits upsampled to the photo (HxW float)."""
    return persam.predictor.upscale(emb, result.logits[None])[0].numpy()


def _cut(full: np.ndarray, mask: np.ndarray, level: float) -> np.ndarray:
    """:func:`mask_at_level` from already upsampled logits ``full`` and the result's ``mask``."""
    if level == 0:
        return mask
    cut = full > level
    cut = cut | mask if level < 0 else cut & mask
    return cut if cut.any() else mask


def finish(persam: PerSAM, emb: ImageEmbedding, image: np.ndarray | None, result: Result) -> Result:
    """``result`` (in place) as the concept delivers it: at its level (:attr:`PerSAM.mask_level`), then snapped
    to the edges of ``image`` when ``settings.edges`` is on and the pixels are given."""
    result.mask = mask_at_level(persam, emb, result, persam.mask_level)
    if image is not None and persam.settings.edges:
        snap_edges(image, result)
    return result


def fit_level(persam: PerSAM, embs: Sequence[ImageEmbedding], results: Sequence[Result],
              masks: Sequence[np.ndarray], images: Sequence[np.ndarray | None],
              levels: Sequence[float] = LEVELS) -> float:
    """The level (of ``levels``) at which the concept's masks of its own references (``results``, found in
    ``embs``) best match the reference ``masks``: highest mean boundary IoU, snapped to edges where
    ``images`` are given and ``settings.edges`` is on. Ties go to the level nearest 0 (SAM's cut); so does a
    concept that finds nothing in its references."""
    order = sorted(levels, key=abs)
    scores = np.zeros((len(embs), len(order)))
    for i, (emb, result, mask, image) in enumerate(zip(embs, results, masks, images, strict=True)):
        if result.logits is None or not result.mask.any():
            found = [result.mask] * len(order)
        else:  # upsampled once, cut at every level
            full = _full_logits(persam, emb, result)
            found = [_cut(full, result.mask, level) for level in order]
        if image is not None and persam.settings.edges:
            found = [snapped_or_kept(image, f) for f in found]
        scores[i] = _boundary_ious(found, np.asarray(mask, dtype=bool))
    mean = scores.mean(axis=0) if len(embs) else np.zeros(len(order))
    best = int(np.argmax(mean))  # the first of equal means: the level nearest 0
    return float(order[best]) if mean[best] > 0 else 0.0


def _boundary_ious(found: Sequence[np.ndarray], reference: np.ndarray) -> list[float]:
    """Boundary IoU of each of ``found`` with ``reference`` (0 for an empty mask), on the crop that holds them
    all and a margin wider than the boundary band: the same values as on the whole image, at a fraction of
    the cost on a large photo."""
    h, w = reference.shape
    band = boundary_dilation(h, w)
    union = reference.copy()
    for f in found:
        union |= f
    ys, xs = np.nonzero(union.any(axis=1))[0], np.nonzero(union.any(axis=0))[0]
    if ys.size == 0:
        return [0.0] * len(found)
    grow = band + 2
    y0, y1 = max(0, ys[0] - grow), min(h, ys[-1] + 1 + grow)
    x0, x1 = max(0, xs[0] - grow), min(w, xs[-1] + 1 + grow)
    # a band that reaches the crop's edge only where that edge is the image's: erosion treats both alike
    ref = mask_boundary(reference[y0:y1, x0:x1], band)
    out = []
    for f in found:
        if not f.any():
            out.append(0.0)
            continue
        inter, union_count = intersection_union(mask_boundary(f[y0:y1, x0:x1], band), ref)
        out.append(inter / union_count if union_count else 1.0)  # as metrics.boundary_iou counts
    return out
