"""Accuracy where one-shot is hard: the steps of persam's search, richer references and a zoomed second look.

Each function takes a built :class:`~persam.method.PerSAM` and returns a :class:`~persam.method.Result`
(made with :meth:`PerSAM.make_result`), so it can run after, or instead of, ``segment_once``. The search
(:func:`persam.presence.find`, on by default) is built from :func:`peak_points` / :func:`best_candidate`
(other local maxima of the confidence map, ranked by the presence score) and :func:`missing_part` /
:func:`join_parts` (the rest of the object, from where the reference's missing parts match):

* :func:`segment_candidates` -- decode several local maxima of the location confidence map, not only the
  global one, and keep the best ``Result.score`` (the earlier opt-in; the search ranks by presence instead).
* :func:`complete_parts` -- join the missing part unconditionally (the earlier opt-in; the search joins it
  only where the union scores higher).
* :func:`drop_strays` -- a mask's blobs apart from the clicked one removed where that scores higher (a
  further instance that took a patch of something else along).
* :func:`reference_views` -- more views of the one reference: the object cropped and enlarged, so that a
  small reference gives many feature cells, and a mirrored copy.
* :func:`zoom_refine` -- crop the target around the found mask, encode the crop at the encoder's full
  resolution and decode again there, prompted by the mask and box mapped into the crop; the mask is pasted
  back. Finer edges and small objects, at the price of a second encoder pass.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from .grid import components
from .method import Hint, PerSAM, Result, cosine_map, mask_box
from .predictor import ImageEmbedding, SamPredictor
from .prompts import point_arrays
from .transforms import image_to_grid

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "best_candidate",
    "complete_parts",
    "crop_box",
    "decode_at",
    "drop_strays",
    "join_parts",
    "missing_part",
    "peak_points",
    "reference_views",
    "segment_candidates",
    "zoom_refine",
]

# Logit given to the part of the crop's mask prompt outside the image (SAM's "certainly background").
_BACKGROUND_LOGIT = -20.0


def peak_points(persam: PerSAM, emb: ImageEmbedding, k: int = 3, radius: int = 2,
                min_ratio: float = 0.8) -> list[tuple[float, float]]:
    """Up to ``k`` local maxima (x, y) of the location confidence map, in image pixels, best first.

    The first is the map's global maximum, PerSAM's own click. The others are found on the encoder grid (a
    cell that is the maximum of its (2 ``radius`` + 1)-cell square, at least ``min_ratio`` times the
    global maximum, more than ``radius`` cells from every earlier peak) and placed at their cell's centre:
    on the grid the search costs nothing, on the full-size map a window of that size would.
    """
    sim_img = persam.location_map(emb)
    h, w = sim_img.shape
    best = int(torch.argmax(sim_img))
    points = [(float(best % w), float(best // w))]
    if k <= 1:
        return points
    img_size = persam.predictor.model.img_size
    grid = cosine_map(persam.target_embedding, emb.match_features)
    cell = img_size / grid.shape[-1]  # encoder pixels per cell
    gh = max(1, int(np.ceil(emb.input_size[0] / cell)))
    gw = max(1, int(np.ceil(emb.input_size[1] / cell)))
    grid = grid[:gh, :gw]
    pooled = F.max_pool2d(grid[None, None], 2 * radius + 1, stride=1, padding=radius)[0, 0]
    top = float(sim_img.max())
    peaks = (grid >= pooled) & (grid >= min_ratio * top)
    ys, xs = torch.nonzero(peaks, as_tuple=True)
    sx, sy = w / emb.input_size[1], h / emb.input_size[0]  # encoder pixels -> image pixels
    taken = [(points[0][0] / sx / cell, points[0][1] / sy / cell)]  # in cells
    for i in torch.argsort(grid[ys, xs], descending=True).tolist():
        gx, gy = float(xs[i]) + 0.5, float(ys[i]) + 0.5
        if all(max(abs(gx - tx), abs(gy - ty)) > radius for tx, ty in taken):
            taken.append((gx, gy))
            points.append((min(gx * cell * sx, w - 1.0), min(gy * cell * sy, h - 1.0)))
        if len(points) == k:
            break
    return points


def _rank_value(result: Result, rank: str) -> float:
    if rank == "similarity":
        return result.similarity
    return result.score


def decode_at(persam: PerSAM, emb: ImageEmbedding, x: float, y: float,
              negatives: tuple[tuple[float, float], ...] = ()) -> Result:
    """PerSAM's whole decoding with its positive click forced to (x, y) (a one-pixel search region), and
    background clicks at ``negatives``."""
    xi, yi = int(x), int(y)
    return persam.segment_once(emb, Hint(region=(xi, yi, xi, yi), negatives=tuple(negatives)))


def best_candidate(persam: PerSAM, emb: ImageEmbedding, value: Callable[[Result], float], k: int = 3,
                   min_ratio: float = 0.8, first: tuple[Result, float] | None = None) -> tuple[Result, float]:
    """The decoding from up to ``k`` peaks of the confidence map (:func:`peak_points`) whose ``value`` is
    highest, with that value (the earliest peak wins a tie). ``first``: the first peak's result and value,
    already computed (``persam.segment_once(emb)``); they are not computed again."""
    peaks = peak_points(persam, emb, k, min_ratio=min_ratio)
    if first is not None:
        best, best_value = first
    else:
        best = decode_at(persam, emb, *peaks[0])
        best_value = value(best)
    for x, y in peaks[1:]:
        result = decode_at(persam, emb, x, y)
        result_value = value(result)
        if result_value > best_value:
            best, best_value = result, result_value
    return best, best_value


@torch.inference_mode()
def segment_candidates(persam: PerSAM, emb: ImageEmbedding, k: int = 3, min_ratio: float = 0.8,
                       rank: str = "score") -> Result:
    """PerSAM's whole decoding from each of up to ``k`` peaks of the confidence map (:func:`peak_points`);
    the result with the highest ``rank`` ("score": predicted IoU x part similarity, or "similarity")."""
    if rank not in ("score", "similarity"):
        raise ValueError(f"rank must be 'score' or 'similarity', not {rank!r}")
    start = time.perf_counter()
    best, _ = best_candidate(persam, emb, lambda r: _rank_value(r, rank), k, min_ratio)
    best.timings["decoder"] = time.perf_counter() - start
    return best


def crop_box(box: tuple[int, int, int, int], shape: tuple[int, int], margin: float = 0.25,
             min_size: int = 64) -> tuple[int, int, int, int]:
    """The crop (x0, y0, x1, y1, exclusive ends) around an inclusive ``box``: grown by ``margin`` of its
    size on every side, at least ``min_size`` pixels a side where the image allows; a crop that would
    cross the image's edge is shifted inside it (so it keeps its size), and clipped only if larger."""
    h, w = shape
    x0, y0, x1, y1 = box

    def span(lo: int, hi: int, size: int) -> tuple[int, int]:
        length = min(size, int(np.ceil(max((hi - lo + 1) * (1 + 2 * margin), min_size))))
        start = int(np.floor((lo + hi + 1) / 2 - length / 2))
        start = min(max(start, 0), size - length)  # shifted inside the image, not cut
        return start, start + length

    cx0, cx1 = span(x0, x1, w)
    cy0, cy1 = span(y0, y1, h)
    return cx0, cy0, cx1, cy1


@torch.inference_mode()
def zoom_refine(persam: PerSAM, emb: ImageEmbedding, image: np.ndarray, result: Result, margin: float = 0.25,
                max_fraction: float = 1.0, steps: int = 1) -> Result:
    """Decode again on a crop around ``result``'s mask, encoded at the encoder's full resolution.

    The crop is the mask's box grown by ``margin``; when it covers more than ``max_fraction`` of the image
    (nothing to gain) or the mask is empty, ``result`` comes back unchanged. In the crop, SAM gets the box,
    the positive clicks inside it and the mask logits (all mapped into the crop) and gives three masks; the
    best by predicted IoU is pasted back (outside the crop: background). ``steps`` > 1 repeats the decoding
    with the new mask's box. The Result's score is computed on the full image's features, as for any
    other result; its mask is the fine one.
    """
    start = time.perf_counter()
    box = mask_box(result.mask)
    if box is None or result.logits is None:
        return result
    h, w = result.mask.shape
    cx0, cy0, cx1, cy1 = crop_box(box, (h, w), margin)
    if (cx1 - cx0) * (cy1 - cy0) > max_fraction * h * w:
        return result
    p = persam.predictor
    crop = np.ascontiguousarray(image[cy0:cy1, cx0:cx1])
    cemb = p.encode(crop)
    grid = result.logits.shape[-1]
    full = p.upscale(emb, result.logits[None])[0, cy0:cy1, cx0:cx1]
    mask_input = image_to_grid(full[None, None].float(), grid, p.model.img_size, cemb.input_size,
                               _BACKGROUND_LOGIT)[0]
    crop_box_prompt = np.array([box[0] - cx0, box[1] - cy0, box[2] - cx0, box[3] - cy0], dtype=np.float32)
    inside = [(x - cx0, y - cy0, lbl) for x, y, lbl in result.points
              if cx0 <= x < cx1 and cy0 <= y < cy1]
    coords, labels = point_arrays(inside) if inside else (None, None)
    logits, iou = mask_input[0], torch.tensor(result.iou_prediction)
    for _ in range(max(1, steps)):
        out = p.predict(cemb, coords, labels, box=crop_box_prompt, mask_input=logits[None], multimask_output=True)
        i = int(torch.argmax(out.iou))
        logits, iou = out.logits[i], out.iou[i]
        new_box = mask_box(p.upscale(cemb, logits[None])[0].numpy() > 0)
        if new_box is None:
            break
        crop_box_prompt = np.asarray(new_box, dtype=np.float32)
    fine = p.upscale(cemb, logits[None])[0]  # crop-sized logits
    pasted = torch.full((1, 1, h, w), _BACKGROUND_LOGIT)
    pasted[0, 0, cy0:cy1, cx0:cx1] = fine
    low = image_to_grid(pasted, grid, p.model.img_size, emb.input_size, _BACKGROUND_LOGIT)[0, 0]
    out_box = mask_box(fine.numpy() > 0)
    final_box = None if out_box is None else (out_box[0] + cx0, out_box[1] + cy0, out_box[2] + cx0,
                                              out_box[3] + cy0)
    refined = persam.make_result(emb, low, iou, result.points, final_box, start)
    refined.mask = pasted[0, 0].numpy() > 0
    if not refined.mask.any():
        refined.score = 0.0
    refined.timings["encoder"] = result.timings.get("encoder", emb.seconds) + cemb.seconds
    refined.timings["decoder"] = result.timings.get("decoder", 0.0) + refined.timings["decoder"] - cemb.seconds
    refined.timings["zoom_encoder"] = cemb.seconds
    return refined


@torch.inference_mode()
def reference_views(predictor: SamPredictor, image: np.ndarray, mask: np.ndarray, *, crop: bool = True,
                    flip: bool = True, margin: float = 0.25, max_fraction: float = 0.5,
                    emb: ImageEmbedding | None = None) -> tuple[list[ImageEmbedding], list[np.ndarray]]:
    """Extra encoded views of one reference (not including the reference itself) and their masks.

    ``crop``: the object's box grown by ``margin``, encoded at full resolution, when that crop is at most
    ``max_fraction`` of the image (a larger object already gives many cells). ``flip``: the image mirrored
    left-right (``emb``, the reference's own encoding, is not needed for it but documents the pairing).
    Pass them with the reference to :meth:`PerSAM.from_embeddings`.
    """
    del emb
    embs: list[ImageEmbedding] = []
    masks: list[np.ndarray] = []
    box = mask_box(mask)
    if box is None:
        return embs, masks
    h, w = mask.shape
    if crop:
        cx0, cy0, cx1, cy1 = crop_box(box, (h, w), margin)
        if (cx1 - cx0) * (cy1 - cy0) <= max_fraction * h * w:
            embs.append(predictor.encode(np.ascontiguousarray(image[cy0:cy1, cx0:cx1])))
            masks.append(np.ascontiguousarray(mask[cy0:cy1, cx0:cx1]))
    if flip:
        embs.append(predictor.encode(np.ascontiguousarray(image[:, ::-1])))
        masks.append(np.ascontiguousarray(mask[:, ::-1]))
    return embs, masks


@torch.inference_mode()
def missing_part(persam: PerSAM, emb: ImageEmbedding, result: Result, gain: float = 0.1,
                 min_parts: float = 0.1) -> Result | None:
    """PerSAM's decoding from where the reference's missing parts match, or None when few are missing.

    A reference cell is *missing* when its best cosine match anywhere in the target beats its best match
    under ``result``'s mask by more than ``gain``; with at least ``min_parts`` of the cells missing, the
    location matched by most of them is clicked (as in :func:`segment_candidates`). What it finds is the
    rest of the object (a part of it, to join) or the object itself (when ``result`` was something else):
    the caller decides which, see :func:`persam.presence.find`.
    """
    if result.logits is None or not result.mask.any():
        return None
    feats = F.normalize(emb.match_features[0], dim=0)  # (C, h, w)
    c, gh, gw = feats.shape
    inside = F.interpolate(result.logits[None, None].to(feats), (gh, gw), mode="bilinear",
                           align_corners=False)[0, 0] > 0
    img_size = persam.predictor.model.img_size
    cell = img_size / gw
    vh = max(1, int(np.ceil(emb.input_size[0] / cell)))
    vw = max(1, int(np.ceil(emb.input_size[1] / cell)))
    valid = torch.zeros(gh, gw, dtype=torch.bool, device=feats.device)
    valid[:vh, :vw] = True
    outside = (valid & ~inside).flatten()
    if not inside.any() or not outside.any():
        return None
    sims = persam.part_features.to(feats) @ feats.reshape(c, -1)  # (N, h*w)
    best_in = sims[:, inside.flatten()].amax(1)
    best_out, where = sims[:, outside].max(1)
    missing = best_out - best_in > gain
    if float(missing.float().mean()) < min_parts:
        return None
    gy, gx = divmod(int(torch.mode(torch.nonzero(outside).flatten()[where[missing]]).values), gw)
    h, w = result.mask.shape
    x = int(min((gx + 0.5) * cell * w / emb.input_size[1], w - 1))
    y = int(min((gy + 0.5) * cell * h / emb.input_size[0], h - 1))
    other = decode_at(persam, emb, x, y)
    return other if other.logits is not None and other.mask.any() else None


def join_parts(persam: PerSAM, emb: ImageEmbedding, result: Result, part: Result,
               near: float = 0.02) -> Result | None:
    """``result`` and ``part`` as one mask when they touch (boxes within ``near`` box sizes: an object's parts
    touch, a look-alike elsewhere does not) and ``part`` adds something; else None."""
    start = time.perf_counter()
    a, b = mask_box(result.mask), mask_box(part.mask)
    if a is None or b is None or result.logits is None or part.logits is None:
        return None
    size = max(a[2] - a[0] + 1, a[3] - a[1] + 1)
    gap = max(b[0] - a[2], a[0] - b[2], b[1] - a[3], a[1] - b[3], 0)
    if gap > near * size or (part.mask & ~result.mask).sum() < 0.05 * part.mask.sum():
        return None
    logits = torch.maximum(result.logits, part.logits)
    iou = torch.tensor(min(result.iou_prediction, part.iou_prediction))
    merged = persam.make_result(emb, logits, iou, result.points + [p for p in part.points if p[2] == 1],
                                result.box, start)
    merged.mask = result.mask | part.mask
    merged.timings["decoder"] = (result.timings.get("decoder", 0.0) + part.timings.get("decoder", 0.0)
                                 + merged.timings["decoder"])
    return merged


def complete_parts(persam: PerSAM, emb: ImageEmbedding, result: Result, gain: float = 0.1,
                   min_parts: float = 0.1, near: float = 0.02) -> Result:
    """Add the object's missing parts (:func:`missing_part`) when they touch the mask (:func:`join_parts`),
    unconditionally; :func:`persam.presence.find` instead keeps the union only when it scores higher. Cf. the
    part-level prompts of P2SAM (Zhao et al., 2024) and Matcher's bidirectional part matching (Liu et al.,
    ICLR 2024), here without new weights or clustering."""
    part = missing_part(persam, emb, result, gain, min_parts)
    merged = join_parts(persam, emb, result, part, near) if part is not None else None
    return merged if merged is not None else result


def drop_strays(persam: PerSAM, emb: ImageEmbedding, result: Result, score: Callable[[Result], float],
                min_share: float = 0.02, tries: int = 3) -> tuple[Result, float]:
    """``(result, its score)`` with blobs apart from the clicked one removed, one by one (largest first, at most
    ``tries``, each at least ``min_share`` of the mask), wherever that raises ``score``.

    SAM sometimes answers one click with the object plus a patch of something else elsewhere (a shoe pasted on
    a dog, and a piece of the dog's side): as an instance that patch is wrong, and removing it raises the
    presence score, so ``score`` decides. Blobs come from the low-res logits, restricted to the image's part of
    the padded square; the clicked blob (or the largest, when the click is off the mask) always stays.
    """
    base = score(result)
    if result.logits is None or not result.mask.any():
        return result, base
    start = time.perf_counter()
    h_in, w_in = emb.input_size
    scale = result.logits.shape[-1] / persam.predictor.model.img_size  # low-res cells per input pixel
    vh, vw = max(1, round(h_in * scale)), max(1, round(w_in * scale))
    on = result.logits.detach().cpu() > 0
    on[vh:, :] = False
    on[:, vw:] = False
    labels = components(on)
    ids, areas = torch.unique(labels[labels > 0], return_counts=True)
    if len(ids) < 2:
        return result, base
    h, w = result.mask.shape
    keep = int(ids[torch.argmax(areas)])
    for x, y, label in result.points:
        gy, gx = min(int(y * h_in / h * scale), vh - 1), min(int(x * w_in / w * scale), vw - 1)
        if label == 1 and min(gy, gx) >= 0 and labels[gy, gx] > 0:
            keep = int(labels[gy, gx])
            break
    total = float(areas.sum())
    others = sorted(((int(a), int(i)) for i, a in zip(ids, areas, strict=True)
                     if int(i) != keep and int(a) >= min_share * total), reverse=True)[:tries]
    best, best_score = result, base
    for _, blob in others:
        # the blob and its one-cell rim (where its logits fall to 0) set to certain background
        logits = best.logits.clone()
        region = (F.max_pool2d((labels == blob).float()[None, None], 3, stride=1, padding=1)[0, 0] > 0).to(
            logits.device)
        logits[region] = torch.clamp(logits[region], max=_BACKGROUND_LOGIT)
        trimmed = persam.make_result(emb, logits, torch.tensor(best.iou_prediction), best.points, best.box, start)
        if not trimmed.mask.any():
            continue
        trimmed_score = score(trimmed)
        if trimmed_score > best_score:
            trimmed.timings["decoder"] += result.timings.get("decoder", 0.0)  # the decoding, then the trimming
            best, best_score = trimmed, trimmed_score
    return best, best_score
