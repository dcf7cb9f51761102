"""Albums: is my object in this photo, every instance of it, and several concepts in one pass.

In an album most photos do not show the object, some show it twice, and people keep several concepts (two
dogs, a cat). :class:`AlbumSegmenter` answers all of that per photo, as a :class:`~persam.findings.Findings`:

* **present or absent** -- one rule, in one place: a concept is present when its presence score
  (:func:`persam.presence.score_result`, the one hook) is at least :data:`DEFAULT_PRESENCE` x the score the
  concept gives its own reference (:attr:`PerSAM.reference_score`, computed at fit time and kept in concept files).
  Concepts saved before that was recorded use :data:`FALLBACK_REFERENCE_SCORE`. An absent concept gets an
  empty mask; its score is kept, so photos can still be ranked.
* **every instance** (``instances="all"``) -- after the first mask, further peaks of the location confidence
  map outside what was found so far are decoded one by one; each decoding that is present on its own (or
  nearly, and alike an instance already found in the photo) and is not a duplicate of a kept instance (mask
  IoU > 0.5, or mostly inside one) is a new instance; blobs it took along apart from the click are dropped
  where the presence score rises without them.
* **several concepts** -- the photo is encoded once (optionally through an
  :class:`~persam.embedding_cache.EmbeddingCache`) and every concept decoded; a pixel claimed by two
  instances goes to the one with the higher mask logit there, as for objects in video.

With one concept and ``instances="one"`` the mask of a photo is :meth:`PerSAM.segment`'s: persam's search
(:func:`persam.presence.find`), whose second look at other peaks also covers every score below the album's
threshold. Every decision here is one photo's; once a run's photos are done, :mod:`persam.album_check` looks
across the whole album (:meth:`persam.runs.ImageRun.check_album`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from . import presence, settings
from .concept_set import (  # noqa: F401 (re-exported: the album's public names)
    DEFAULT_CONCEPT,
    ConceptSet,
    check_same_model,
    concept_name,
    unique_names,
)
from .findings import ConceptFinding, Findings, Instance
from .io import load_image
from .method import PerSAM
from .negatives import rejected_by
from .outline import finish
from .predictor import ImageEmbedding
from .refine import decode_at, drop_strays
from .results import Result

#: present when the presence score >= this x the concept's reference score (``--presence`` overrides it).
DEFAULT_PRESENCE = settings.DEFAULT_PRESENCE
FALLBACK_REFERENCE_SCORE = settings.FALLBACK_REFERENCE_SCORE
INSTANCE_MODES = ("one", "all")
DEFAULT_MAX_INSTANCES = 5
#: a new instance is a duplicate of a kept one when their masks' IoU is above this ...
DUPLICATE_IOU = 0.5
#: ... or when more than this fraction of either mask lies inside the other.
DUPLICATE_INSIDE = 0.5
#: peaks of the location map weaker than this x the first peak are not worth decoding (instances="all").
PEAK_FLOOR = 0.75
#: decodings tried per concept beyond the first, as a multiple of the instances still wanted.
ATTEMPTS_PER_INSTANCE = 2
#: a further instance that falls short of the presence threshold is still present when it scores at least this x
#: the threshold and looks like an instance already found in the same photo (:func:`persam.presence.sibling_score`
#: >= :data:`SIBLING_SCORE`): both copies share the photo's light, which the reference does not (chosen on
#: ``bench/instances.py``'s composites, checked on its photos without the object: see the README's albums)
SIBLING_RATIO = 0.85
SIBLING_SCORE = 0.75
#: around every peak tried (and every mask found) this many encoder-grid cells are not searched again.
BLOCK_CELLS = 1.5


def reference_score(persam: PerSAM) -> float:
    """The concept's own reference score, or :data:`FALLBACK_REFERENCE_SCORE` for concepts without one."""
    return persam.own_score()


def is_present(result: Result, score: float, reference: float, threshold: float = DEFAULT_PRESENCE) -> bool:
    """The present/absent rule: a mask was found and its presence ``score`` is at least ``threshold`` x the
    concept's ``reference`` score (so ``threshold`` 0 keeps every mask found, as plain PerSAM does)."""
    return bool(result.found) and score >= threshold * reference


# ------------------------------------------------------------------------------------------ segmenting
def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation by a square of side 2 * radius + 1 (separable max filter, no SciPy needed)."""
    if radius <= 0 or not mask.any():
        return mask.copy()
    t = torch.from_numpy(mask.astype(np.float32))[None, None]
    k = 2 * radius + 1
    t = torch.nn.functional.max_pool2d(t, (k, 1), stride=1, padding=(radius, 0))
    t = torch.nn.functional.max_pool2d(t, (1, k), stride=1, padding=(0, radius))
    return t[0, 0].numpy() > 0


def _inside_point(mask: np.ndarray, points: Sequence[tuple[float, float, int]]) -> tuple[float, float]:
    """A point (x, y) on ``mask``: its first positive click when that lies on it, else the mask's pixel
    nearest to the mask's centroid."""
    for x, y, label in points:
        if label == 1 and 0 <= int(y) < mask.shape[0] and 0 <= int(x) < mask.shape[1] and mask[int(y), int(x)]:
            return float(x), float(y)
    ys, xs = np.nonzero(mask)
    i = int(np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2))
    return float(xs[i]), float(ys[i])


def _is_duplicate(mask: np.ndarray, kept: Sequence[np.ndarray]) -> bool:
    area = int(mask.sum())
    for other in kept:
        inter = int(np.logical_and(mask, other).sum())
        if not inter:
            continue
        other_area = int(other.sum())
        union = area + other_area - inter
        if inter / union > DUPLICATE_IOU or inter / area > DUPLICATE_INSIDE or inter / other_area > DUPLICATE_INSIDE:
            return True
    return False


@dataclass
class _Candidate:
    concept: str
    score: float
    result: Result


def _one_concept_per_object(candidates: list[_Candidate]) -> tuple[list[_Candidate], dict[int, str]]:
    """Several concepts found on one object (two dogs of an album on one dog): it goes to the concept whose
    presence score is highest, the others' candidates there are dropped. Two candidates are on one object
    when more than :data:`DUPLICATE_INSIDE` of the smaller mask lies inside the larger. Returns the kept
    candidates and, for each dropped one (by ``id`` of its result), the concept that took its object."""
    if len({c.concept for c in candidates}) < 2:  # one concept (the usual album run): nothing to share
        return candidates, {}
    areas = [int(c.result.mask.sum()) for c in candidates]
    kept, taken_by = [], {}
    for i, cand in enumerate(candidates):
        winner = None
        for j, other in enumerate(candidates):
            if other is cand or other.concept == cand.concept or other.score <= cand.score:
                continue
            inter = int(np.logical_and(cand.result.mask, other.result.mask).sum())
            on_one_object = inter > DUPLICATE_INSIDE * min(areas[i], areas[j])
            if on_one_object and (winner is None or other.score > winner.score):
                winner = other
        if winner is None:
            kept.append(cand)
        else:
            taken_by[id(cand.result)] = winner.concept
    return kept, taken_by


class AlbumSegmenter:
    """Segments photos for a :class:`ConceptSet`: presence, every instance, several concepts, one encoding.

    ``instances`` is "one" (the best match per concept) or "all" (up to ``max_instances`` per concept);
    ``presence`` the threshold of the present/absent rule (x each concept's reference score); ``cache`` an
    :class:`~persam.embedding_cache.EmbeddingCache` or a folder for one. ``encode_count`` counts encodings.
    """

    def __init__(self, concepts: ConceptSet | Mapping[str, PerSAM] | Sequence[PerSAM] | PerSAM, *,
                 instances: str = "one", max_instances: int = DEFAULT_MAX_INSTANCES,
                 presence: float | None = None, cache=None) -> None:
        from .embedding_cache import EmbeddingCache

        self.concepts = concepts if isinstance(concepts, ConceptSet) else ConceptSet(concepts)
        if instances not in INSTANCE_MODES:
            raise ValueError(f"instances must be one of {', '.join(INSTANCE_MODES)}, not {instances!r}")
        if not 1 <= int(max_instances) <= 255:
            raise ValueError("max_instances must be between 1 and 255")
        self.instances = instances
        self.max_instances = int(max_instances)
        self.presence = DEFAULT_PRESENCE if presence is None else float(presence)
        if cache is not None and not isinstance(cache, EmbeddingCache):
            cache = EmbeddingCache(cache, self.concepts.predictor)
        self.cache = cache
        self.encode_count = 0

    @property
    def palette(self) -> bool:
        """Masks are palette PNGs of instance ids unless there is one concept and one instance per photo."""
        return len(self.concepts) > 1 or self.instances != "one"

    def encode(self, image: np.ndarray) -> ImageEmbedding:
        """The photo's embedding, once for all concepts (through the cache when there is one)."""
        self.encode_count += 1
        if self.cache is not None:
            return self.cache.encode(image)
        return self.concepts.predictor.encode(image)

    def segment(self, image) -> Findings:
        """Find every concept in ``image`` (a path, PIL image or HxWx3 array)."""
        start = time.perf_counter()
        rgb = load_image(image)
        emb = self.encode(rgb)
        findings = self.segment_embedding(emb, rgb)
        findings.cached = self.cache.last_hit if self.cache is not None else None
        findings.timings["total"] = time.perf_counter() - start
        return findings

    @torch.inference_mode()
    def segment_embedding(self, emb: ImageEmbedding, image: np.ndarray | None = None) -> Findings:
        """:meth:`segment` on an already encoded photo (``image``: its pixels, for the presence hook)."""
        start = time.perf_counter()
        firsts: list[tuple[str, Result, float, float, str | None]] = []
        candidates: list[_Candidate] = []
        for name, persam in zip(self.concepts.names, self.concepts.persams, strict=True):
            ref = reference_score(persam)
            # persam's search: unsure (a score between GRAY_FLOOR and SURE), the map's other peaks are
            # decoded too and the best-scoring one kept (the whole object, or the real one among look-alikes);
            # missing parts added where that scores higher
            sure = max(presence.SURE, self.presence) * ref
            first, score = presence.find(persam, emb, image, gray_zone=(presence.GRAY_FLOOR, sure))
            present = is_present(first, score, ref, self.presence)
            # a flagged look-alike (persam.negatives) it is clearly more like: absent, and the record says so
            rejected = rejected_by(persam.negatives, emb, image, first, score) if present else None
            present = present and rejected is None
            found = [_Candidate(name, score, first)] if present else []
            if self.instances == "all":  # also when the first peak was a look-alike: the object may be elsewhere
                found += self._more_instances(name, persam, emb, image, first, ref, present)
            for cand in found:  # after the search, which reads SAM's own masks: the concept's level, edges
                finish(persam, emb, image, cand.result)
            candidates += found
            firsts.append((name, first, score, ref, rejected))
        candidates, taken_by = _one_concept_per_object(candidates)
        concept_findings: list[ConceptFinding] = []
        for name, first, score, ref, rejected in firsts:
            present = any(c.concept == name for c in candidates)  # found, on an object no concept claims better
            first.present = present
            if not any(c.result is first for c in candidates):
                first.mask = np.zeros_like(first.mask)
            concept_findings.append(ConceptFinding(name, first, score, present, ref, taken_by.get(id(first)),
                                                   rejected))
        labels = self._labels(emb, candidates)
        instances = []
        for n, cand in enumerate(candidates, 1):  # numbered 1..N in order; one left with no pixels is gone
            i_mask = labels == n
            if i_mask.any():
                instances.append(Instance(len(instances) + 1, cand.concept, cand.score, i_mask, cand.result))
        final = np.zeros_like(labels)
        for inst in instances:
            final[inst.mask] = inst.id
        timings = {"encoder": emb.seconds, "decoder": time.perf_counter() - start}
        return Findings(final, instances, concept_findings, self.palette, timings)

    def _more_instances(self, name: str, persam: PerSAM, emb: ImageEmbedding, image: np.ndarray | None,
                        first: Result, ref: float, first_present: bool = True) -> list[_Candidate]:
        """Further instances of one concept: decode peaks of its location map outside what was found so far."""
        sim = persam.location_map(emb).clone()
        h, w = sim.shape
        cell = max(h, w) / persam.predictor.model.prompt_encoder.image_embedding_size[0]
        radius = max(1, round(BLOCK_CELLS * cell))
        blocked = _dilate(first.mask, radius)
        first_peak = float(sim.max())
        kept = [first] if first_present else []
        found: list[_Candidate] = []
        attempts = ATTEMPTS_PER_INSTANCE * (self.max_instances - 1)

        def presence_of(result: Result) -> float:
            return presence.score_result(persam, emb, result, image)

        while attempts > 0 and len(kept) < self.max_instances:
            attempts -= 1
            search = sim.masked_fill(torch.from_numpy(blocked), float("-inf"))
            peak = float(search.max())
            if not np.isfinite(peak) or (first_peak > 0 and peak < PEAK_FLOOR * first_peak):
                break
            index = int(torch.argmax(search))
            y, x = divmod(index, w)
            # a blob of something else taken along with the instance is dropped where that scores higher
            result, score = drop_strays(persam, emb, decode_at(persam, emb, x, y), presence_of)
            kept_masks = [k.mask for k in kept]
            duplicate = again = result.found and _is_duplicate(result.mask, kept_masks)
            if again:
                # it swallowed an instance already kept (a second copy touching it, or something else around
                # it): decode again with a background click on every kept instance
                negatives = tuple(_inside_point(k.mask, k.points) for k in kept)
                result, score = drop_strays(persam, emb, decode_at(persam, emb, x, y, negatives=negatives),
                                            presence_of)
                duplicate = result.found and _is_duplicate(result.mask, kept_masks)
            spot = np.zeros((h, w), dtype=bool)
            spot[max(0, y - radius): y + radius + 1, max(0, x - radius): x + radius + 1] = True
            if not duplicate and (is_present(result, score, ref, self.presence)
                                  or self._sibling(emb, image, result, score, ref, kept)) \
                    and rejected_by(persam.negatives, emb, image, result, score) is None:
                result.present = True
                found.append(_Candidate(name, score, result))
                kept.append(result)
                blocked |= _dilate(result.mask, radius)
            elif result.found and not duplicate and (not again or score < presence.GRAY_FLOOR):
                # not the object: do not try its pixels again (after a second decoding only when clearly not:
                # that one's mask can still hold a copy another peak decodes whole)
                blocked |= result.mask
            blocked |= spot
        return found

    def _sibling(self, emb: ImageEmbedding, image: np.ndarray | None, result: Result, score: float, ref: float,
                 kept: list[Result]) -> bool:
        """Short of the threshold, but close, and alike an instance already found in this photo."""
        if not kept or not result.found or score < SIBLING_RATIO * self.presence * ref:
            return False
        return any(presence.sibling_score(emb, image, k, result) >= SIBLING_SCORE for k in kept)

    def _labels(self, emb: ImageEmbedding, candidates: list[_Candidate]) -> np.ndarray:
        """One candidate index (1-based) per pixel: where masks overlap, the higher mask logit wins (the higher
        score where logits are missing)."""
        h, w = emb.original_size
        labels = np.zeros((h, w), dtype=np.uint8)
        if not candidates:
            return labels
        claims = np.zeros((h, w), dtype=np.uint8)
        for cand in candidates:
            claims += cand.result.mask
        for i, cand in enumerate(candidates, 1):
            labels[cand.result.mask & (claims == 1)] = i
        contested = claims > 1
        if not contested.any():
            return labels
        best = np.full(int(contested.sum()), -np.inf, dtype=np.float32)
        order = sorted(range(len(candidates)), key=lambda i: -candidates[i].score)
        use_logits = all(c.result.logits is not None for c in candidates)
        contested_labels = np.zeros_like(best, dtype=np.uint8)
        for rank, i in enumerate(order):
            cand = candidates[i]
            inside = cand.result.mask[contested]
            if use_logits:
                full = self.concepts.predictor.upscale(emb, cand.result.logits[None])[0].numpy()
                value = full[contested]
            else:
                value = np.full(best.shape, -rank, dtype=np.float32)
            better = inside & (value > best)
            best[better] = value[better]
            contested_labels[better] = i + 1
        labels[contested] = contested_labels
        return labels
