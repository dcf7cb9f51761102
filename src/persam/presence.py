"""Is *my* object in this photo? A presence score for one personalized object, from what PerSAM found.

The landed ``Result.score`` (SAM's predicted IoU x the part similarity of the reference's cells) ranks photos of
the same *class* almost as high as photos of the same *instance*: SAM's features say "a dog" far more than
"this white poodle". The presence score multiplies two cues that fail in different ways:

* **part similarity in both directions** (:func:`mutual_part_similarity`): the reference's cells are found in
  the mask *and* the mask's cells are found in the reference (a mask that also holds something else scores
  lower), the mean of the two; SAM's IoU head is left out (it says how clean the mask is, not whose it is);
* **colour agreement** (:func:`colour_agreement`): the Bhattacharyya coefficient of CIELAB colour histograms
  (:func:`colour_histogram`) of the pixels under the found mask and under the reference mask -- the cue that
  tells a white poodle from a brown dog, which SAM's features barely do. Lab separates lightness, which
  changes with the light, from chroma, which changes less; lightness gets only a dark/light split, chroma a
  finer grid, and every pixel is spread over its neighbouring bins (soft binning), so a small shift of
  colour moves weight between bins instead of flipping it. The light a photo is shot in shifts every colour
  along the daylight locus (warmer at sunset or under a lamp, cooler in shade): the reference's colours are
  also taken under :data:`LIGHTS` other lights, and the agreement is the geometric mean of the agreement as
  shot and the best under any of them (:func:`light_tolerant_agreement`): a difference that a change of light
  explains costs half as much -- the yellow clock shot in warm light and again on a white bed in daylight.

Both are in [0, 1], 1 for the reference re-segmenting itself, so their product is read against an absolute
threshold (:data:`DEFAULT_THRESHOLD`; judging it relative to the concept's own reference score did no
better, see ``bench/album.py``).

What a concept needs at fit time: :func:`reference_histogram` of its reference image(s) and mask(s), one
float32 array of rows of :data:`HISTOGRAM_BINS` values (store it in the concept file, e.g. as ``presence_colour``);
the part features are already stored. Per photo: :func:`score_result` (the one hook: :func:`presence_score`
when the pixels and colours are at hand) and :func:`is_present`; :func:`find` is persam's search, which uses
the score to choose between candidate masks (other peaks, missing parts).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from .grid import cells_under, part_features, reference_cells
from .predictor import ImageEmbedding

LIGHTNESS_BINS = 2  # dark / light: lightness follows the exposure more than the object
CHROMA_BINS = 8  # per axis of the (a*, b*) plane
CHROMA_RANGE = 64.0  # a*, b* in [-64, 64]; stronger colours fall into the edge bins
HISTOGRAM_BINS = LIGHTNESS_BINS * CHROMA_BINS * CHROMA_BINS
#: pixels a histogram is computed from, at most (a regular subsample of the image): colour statistics need no
#: more, and converting a full photo to Lab would cost more than the decoder
MAX_PIXELS = 256 * 256
#: "present" when the presence score is at least this: the best pooled-F1 threshold on the DreamBooth album
#: (bench/album.py), rounded down -- the exact optimum sits just above a few look-alikes, so expect precision to
#: move with the last digit; the reference re-segmenting itself scores ~1, so this is also ~0.7 x its score.
DEFAULT_THRESHOLD = 0.7
#: :func:`find` decodes other candidates only for a first score in [GRAY_FLOOR, SURE x the concept's own reference
#: score): above, the mask is surely the object; below, on the album, no photo of the object was ever found by
#: another candidate. SURE lies above the presence threshold: a mask that passes it only just (a part of the
#: object, a look-alike beside it) still gets a second look (chosen on DAVIS one-shot frames with
#: bench/accuracy.py against 0.7, 0.9 and always: see the README's "Where one-shot is hard")
GRAY_FLOOR = 0.3
SURE = 0.8
#: :func:`find` tries up to this many peaks of the confidence map, each at least ``CANDIDATE_RATIO`` x the
#: highest: with fewer, lower-reaching candidates whether the object's own peak made the cut hung on tiny feature
#: differences (the encoder's precision), see the README's album section
CANDIDATES = 4
CANDIDATE_RATIO = 0.7

#: the other lights a reference's colours are taken under: gains (t, 1, 1/t) of linear red and blue, ln t in
#: [-LIGHT_SHIFT, LIGHT_SHIFT] (t 0.70-1.43: from a cool shade to a warm lamp; the red/blue ratio halves or
#: doubles), evenly spaced; chosen on the DreamBooth album with bench/album_light.py (against 0 and 0.24)
LIGHT_SHIFT = 0.36


def lights_within(shift: float, each_way: int = 6) -> tuple[float, ...]:
    """The lights t != 1 with ln t evenly spaced in [-shift, shift], ``each_way`` on either side; () for 0."""
    if shift <= 0:
        return ()
    return tuple(float(t) for t in np.exp(np.linspace(-shift, shift, 2 * each_way + 1)) if abs(np.log(t)) > 1e-9)


LIGHTS = lights_within(LIGHT_SHIFT)

_SRGB_TO_XYZ = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
_WHITE_D65 = np.array([0.95047, 1.0, 1.08883])


def srgb_to_lab(rgb: np.ndarray, light: float = 1.0) -> np.ndarray:
    """CIELAB (D65) of (..., 3) uint8 sRGB values, float64 (..., 3): L in [0, 100], a*, b* about +-100.
    ``light`` t != 1: as if shot under another light, linear red x t and blue / t (clipped at white)."""
    c = rgb.astype(np.float64) / 255.0
    c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    if light != 1.0:
        c = np.minimum(c * np.array([light, 1.0, 1.0 / light]), 1.0)
    xyz = c @ _SRGB_TO_XYZ.T / _WHITE_D65
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def _subsample(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The object's pixels (N, 3) on a regular grid of at most about ``MAX_PIXELS`` image pixels."""
    step = max(1, int(np.ceil(np.sqrt(mask.size / MAX_PIXELS))))
    return image[::step, ::step][mask[::step, ::step]]


def _soft_bins(values: np.ndarray, bins: int, lo: float, hi: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Linear interpolation between bin centres: the two bins of every value and their weights."""
    pos = np.clip((values - lo) / (hi - lo) * bins - 0.5, 0.0, bins - 1.0)
    low = np.floor(pos)
    frac = pos - low
    high = np.minimum(low + 1, bins - 1)
    return [low.astype(np.int64), high.astype(np.int64)], [1.0 - frac, frac]


def colour_histogram(image: np.ndarray, mask: np.ndarray, light: float = 1.0) -> np.ndarray:
    """Normalised soft-binned Lab histogram (``HISTOGRAM_BINS``,) float32 of the pixels of an HxWx3 uint8
    image under a bool mask (as if shot under ``light``, see :func:`srgb_to_lab`); all zeros for an empty
    mask."""
    if image.shape[:2] != mask.shape:
        raise ValueError(f"image {image.shape[:2]} and mask {mask.shape} differ in size")
    px = _subsample(image, mask)
    if px.shape[0] == 0:  # the mask only had pixels between the subsample's grid points
        px = image[mask]
    hist = np.zeros(HISTOGRAM_BINS, np.float64)
    if px.shape[0] == 0:
        return hist.astype(np.float32)
    lab = srgb_to_lab(px, light)
    li, lw = _soft_bins(lab[:, 0], LIGHTNESS_BINS, 0.0, 100.0)
    ai, aw = _soft_bins(lab[:, 1], CHROMA_BINS, -CHROMA_RANGE, CHROMA_RANGE)
    bi, bw = _soft_bins(lab[:, 2], CHROMA_BINS, -CHROMA_RANGE, CHROMA_RANGE)
    for il, wl in zip(li, lw, strict=True):
        for ia, wa in zip(ai, aw, strict=True):
            for ib, wb in zip(bi, bw, strict=True):
                idx = (il * CHROMA_BINS + ia) * CHROMA_BINS + ib
                hist += np.bincount(idx, weights=wl * wa * wb, minlength=HISTOGRAM_BINS)
    return (hist / hist.sum()).astype(np.float32)


def reference_histogram(images: list[np.ndarray], masks: list[np.ndarray],
                        lights: tuple[float, ...] = LIGHTS) -> np.ndarray:
    """The concept's colours (fit time): every reference's object pixels pooled, weighted by area, as shot
    (row 0) and under each of ``lights`` (the rows after: :func:`light_tolerant_agreement`); (1 +
    len(lights), ``HISTOGRAM_BINS``) float32, the one array a concept file must add for presence."""
    rows = []
    for light in (1.0, *lights):
        counts = [colour_histogram(img, m, light) * int(m.sum()) for img, m in zip(images, masks, strict=True)]
        total = np.sum(counts, axis=0, dtype=np.float64)
        rows.append(total / total.sum() if total.sum() > 0 else total)
    return np.stack(rows).astype(np.float32)


def object_parts(persam, emb: ImageEmbedding, image: np.ndarray, mask: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    """The unit-length cells (N, C) and colour histogram of the object under ``mask`` in an encoded photo,
    taken as ``persam``'s reference's are, but as shot only: what makes a found object a reference of its own
    (a negative example, a view of the album check). It was found in the album, among the photos it is then
    compared with; taking its colours under other lights too was measured and lets look-alikes in (the
    corgi's photos pass the chow's album check: the README's albums section)."""
    cells = reference_cells(emb, mask, persam.predictor.model.img_size, persam.settings.feature_mask_threshold)
    return part_features(cells), colour_histogram(image, mask)


def colour_agreement(hist_a: np.ndarray, hist_b: np.ndarray) -> float:
    """Bhattacharyya coefficient of two normalised histograms: 1 identical, 0 disjoint (or either empty).
    ``hist_b`` may be an object's colours under several lights (rows, :func:`reference_histogram`): then
    :func:`light_tolerant_agreement`."""
    if hist_b.ndim == 2:
        return light_tolerant_agreement(hist_a, hist_b)
    if hist_a.shape != hist_b.shape:
        raise ValueError(f"histograms of {hist_a.shape} and {hist_b.shape} bins")
    return float(np.clip(np.sqrt(hist_a.astype(np.float64) * hist_b.astype(np.float64)).sum(), 0.0, 1.0))


def light_tolerant_agreement(hist: np.ndarray, lit: np.ndarray) -> float:
    """How well the colours ``hist`` of a found object agree with an object known by its colours ``lit`` as
    shot (row 0) and under other lights (the rows after): the geometric mean of the agreement as shot and
    the best under any light. A colour difference that a change of light explains costs half as much as one
    it does not (in the log of the agreement): the same clock in other light loses less, while a look-alike
    whose colours no light explains gains next to nothing (the full best-light agreement, measured, let
    look-alikes in: bench/album_light.py)."""
    if lit.ndim != 2 or lit.shape[1:] != hist.shape:
        raise ValueError(f"histograms of {hist.shape} and {lit.shape} bins")
    each = np.clip(np.sqrt(lit.astype(np.float64) * hist.astype(np.float64)[None]).sum(axis=1), 0.0, 1.0)
    return float(np.sqrt(each[0] * each.max()))


def mutual_part_similarity(part_features: torch.Tensor, features: torch.Tensor, logits: torch.Tensor) -> float:
    """Mean of the two directions of part matching between reference cells and the cells under a mask.

    ``part_features`` (N, C) are the reference object's unit-length cells (``PerSAM.part_features``),
    ``features`` (1, C, h, w) the target's match features, ``logits`` the final low-res mask logits.
    Reference -> mask: is every part of my object there? Mask -> reference: is everything found part of my
    object? 0 for an empty mask.
    """
    return mutual_parts(part_features, cells_under(features, logits))


def mutual_parts(part_features: torch.Tensor, found: torch.Tensor) -> float:
    """:func:`mutual_part_similarity` of cells already taken from under a mask (``found``: (C, M), unit length,
    as :func:`persam.grid.cells_under` gives them): for scoring one mask against several objects."""
    if found.shape[1] == 0 or part_features.shape[0] == 0:
        return 0.0
    sim = part_features.float().to(found) @ found  # (N, M)
    both = (sim.amax(dim=1).mean() + sim.amax(dim=0).mean()) / 2
    return float(both.clamp(0.0, 1.0))


def sibling_score(emb: ImageEmbedding, image: np.ndarray | None, found, other) -> float:
    """How much ``other`` looks like ``found``, two results in one photo, in [0, 1]: their mutual part
    similarity (``found``'s cells as the reference) x their colour agreement (the parts alone without
    ``image``). Two copies of one object in one photo share its light and colour cast, which the reference,
    shot elsewhere, does not: an instance already found is the closer reference for the next."""
    if found.logits is None or other.logits is None or not found.mask.any() or not other.mask.any():
        return 0.0
    cells = cells_under(emb.match_features, found.logits).T  # (N, C): found's cells, the reference here
    if cells.shape[0] == 0:
        return 0.0
    parts = mutual_part_similarity(cells, emb.match_features, other.logits)
    if image is None:
        return parts
    return parts * colour_agreement(colour_histogram(image, found.mask), colour_histogram(image, other.mask))


def likeness(part_features: torch.Tensor, histogram: np.ndarray | None, emb: ImageEmbedding,
             image: np.ndarray | None, result) -> float:
    """How much ``result`` looks like an object known by its unit-length cells ``part_features`` (N, C) and
    its colour ``histogram``, in [0, 1]: mutual part similarity x colour agreement (the parts alone without
    ``image`` or ``histogram``). 0 when nothing was found. The presence score is this for the reference;
    a negative example (:mod:`persam.negatives`) is scored the same way."""
    if result.logits is None or not result.mask.any():
        return 0.0
    colours = colour_histogram(image, result.mask) if image is not None and histogram is not None else None
    return likeness_of_cells(part_features, histogram, cells_under(emb.match_features, result.logits), colours)


def likeness_of_cells(part_features: torch.Tensor, histogram: np.ndarray | None, found: torch.Tensor,
                      colours: np.ndarray | None) -> float:
    """:func:`likeness` of a mask whose cells ``found`` (C, M) and colour histogram ``colours`` are already
    taken (None: the parts alone): for scoring one mask against several objects."""
    parts = mutual_parts(part_features, found)
    if colours is None or histogram is None:
        return parts
    return parts * colour_agreement(colours, histogram)


def presence_score(persam, emb: ImageEmbedding, image: np.ndarray, result, reference_histogram: np.ndarray) -> float:
    """The presence score in [0, 1] of ``result`` (from ``persam.segment_embedding(emb)``) on ``image`` (the
    HxWx3 uint8 array ``emb`` was encoded from), for the concept whose reference colour histogram is
    ``reference_histogram``: mutual part similarity x colour agreement. 0 when nothing was found."""
    return likeness(persam.part_features, reference_histogram, emb, image, result)


def score_result(persam, emb: ImageEmbedding, result, image: np.ndarray | None) -> float:
    """How sure we are that ``result`` is the concept's object, in [0, 1]: the one presence hook.

    Every decision goes through it: which candidate a search keeps, whether a missing part is added, present
    or absent in albums, extra instances, the concept's own reference score at fit time.
    :func:`presence_score` when the pixels and the concept's colours are at hand; without them (no image, or
    a concept saved before colours were recorded) the mutual part similarity alone.
    """
    return likeness(persam.part_features, getattr(persam, "presence_colour", None), emb, image, result)


def is_present(score: float, threshold: float = DEFAULT_THRESHOLD) -> bool:
    """The present/absent decision for a presence score."""
    return score >= threshold


@torch.inference_mode()
def find(persam, emb: ImageEmbedding, image: np.ndarray | None, reference_histogram: np.ndarray | None = None,
         k: int | None = None, min_ratio: float = CANDIDATE_RATIO,
         gray_zone: tuple[float, float] | None | str = "auto", first=None, score=None,
         complete_parts: bool | None = None):
    """persam's search for the object in an encoded photo: ``(Result, presence score)``.

    PerSAM's decoding from the confidence map's global peak first. When its presence score lies in
    ``gray_zone`` [low, high) ("auto": [:data:`GRAY_FLOOR`, :data:`SURE` x the concept's own reference score);
    None: always), PerSAM's decoding from each of up to ``k`` peaks (default: the
    concept's ``settings.candidates``) too, and the best-scoring result kept: a look-alike seldom explains both
    the parts and the colours of the reference, so when the global peak lands on a look-alike or on one part
    of the object, the whole object at another peak is still found; a clear yes or no needs no second opinion,
    and each candidate costs a whole decoding. Then, with ``complete_parts`` (default: the concept's setting),
    where many reference parts match far better outside the mask, PerSAM decodes from there
    (:func:`persam.refine.missing_part`): joined to the mask when they touch and the union scores at least as
    high as either (the rest of the object: a pram beside the woman pushing it), or kept alone when it scores
    higher than the mask (the object itself, when the mask was something else).

    ``first``: the first peak's result, when already computed. ``score`` (a function of a Result) replaces
    the presence hook (:func:`score_result`, with ``reference_histogram`` for the colours when given).
    """
    from .refine import best_candidate, join_parts, missing_part  # refine imports method (imports this)

    start = time.perf_counter()
    settings = persam.settings
    k = settings.candidates if k is None else k
    parts = settings.complete_parts if complete_parts is None else complete_parts
    if score is None:
        if reference_histogram is not None and image is not None:
            def score(result) -> float:
                return presence_score(persam, emb, image, result, reference_histogram)
        else:
            def score(result) -> float:
                return score_result(persam, emb, result, image)

    if gray_zone == "auto":
        gray_zone = (GRAY_FLOOR, SURE * persam.own_score())
    best = first if first is not None else persam.segment_once(emb)
    best_score = score(best)
    if k > 1 and (gray_zone is None or gray_zone[0] <= best_score < gray_zone[1]):
        best, best_score = best_candidate(persam, emb, score, k, min_ratio, first=(best, best_score))
    if parts:  # the rest of the object, or (when the mask was something else) the object itself
        part = missing_part(persam, emb, best)
        if part is not None:
            part_score = score(part)
            joined = join_parts(persam, emb, best, part)
            joined_score = score(joined) if joined is not None else -1.0
            if joined is not None and joined_score >= max(best_score, part_score):
                best, best_score = joined, joined_score
            elif part_score > best_score:
                best, best_score = part, part_score
    best.timings["presence"] = time.perf_counter() - start
    return best, best_score
