"""PerSAM and PerSAM-F: personalize SAM from one (or a few) reference images and masks, then find that object.

Steps for every target image (Zhang et al., *Personalize Segment Anything Model with One Shot*):

1. **Target embedding** -- the reference image's features under its (down-sampled) mask, pooled: their mean
   (PerSAM) or mean/2 + max/2 (PerSAM-F).
2. **Location confidence map** -- cosine similarity of that embedding with every feature of the target,
   upsampled to the image. Its maximum is a positive click, its minimum a negative click (PerSAM).
3. **Target-guided attention and target-semantic prompting** (PerSAM) -- the normalised confidence map
   modulates the decoder's token-to-image attention, and the target embedding is added to the prompt tokens.
   **Scale fusion** (PerSAM-F) -- SAM's three multi-scale masks are summed with two weights fitted on the
   reference (:mod:`persam.fusion`).
4. **Cascaded post-refinement** -- decode again with the first mask's logits as a mask prompt (PerSAM-F: and
   its box), then with the box of the best mask as well; keep the best-scoring mask.

Fixed defects of the paper's code: masks are read by value (0/1 masks used to give an empty target), the
prior is placed on the padded encoder grid as the image is (it was stretched over the padding on
non-square images), and an empty mask at any step ends in an empty result instead of a crash.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .concept import check_model, concept_contents, concept_state, read_concept, write_concept
from .errors import InputError
from .fusion import INITIAL_WEIGHT, fit_fusion_weights
from .grid import (
    cells_under,
    cosine_map,
    mask_box,
    mask_to_grid,
    part_features,
    pool_target,
    prior_to_grid,
    reference_cells,
)
from .io import load_image, load_reference_mask, source_name
from .loading import load_sam
from .outline import finish, fit_level
from .predictor import ImageEmbedding, SamPredictor
from .prompts import check_prompt, point_arrays, prompt_mask
from .results import Result
from .settings import DEFAULT_METHOD, FALLBACK_REFERENCE_SCORE, Settings
from .transforms import grid_to_image


@dataclass(frozen=True)
class Hint:
    """Where the object was a moment ago (the previous video frame): steers the first decoding.

    ``region`` (x0, y0, x1, y1, inclusive pixels) limits where the positive click is searched, ``box`` is
    a box prompt and ``logits`` (4h, 4w) a mask prompt (the previous frame's low-res logits). ``negatives``
    are background clicks (x, y): objects already found that the mask must leave out.
    """

    region: tuple[int, int, int, int] | None = None
    box: tuple[int, int, int, int] | None = None
    logits: torch.Tensor | None = None
    negatives: tuple[tuple[float, float], ...] = ()


@dataclass
class FirstDecode:
    """The first decoding of a target: its clicks, the coarse mask logits and their predicted IoU."""

    points: list[tuple[float, float, int]]
    logits: torch.Tensor  # (K, 4h, 4w): 1 for PerSAM, SAM's 3 multi-scale masks for PerSAM-F
    iou: torch.Tensor  # (K,)


class PerSAM:
    """A personalized segmenter: one object, learnt from one or a few references, found in new images.

    Build it with :meth:`from_reference` (or :meth:`from_references`, or :meth:`load` a saved concept) and
    call :meth:`segment` on each target image.
    """

    def __init__(
        self,
        predictor: SamPredictor,
        target_embedding: torch.Tensor,
        part_features: torch.Tensor,
        settings: Settings | None = None,
        fusion_weights: torch.Tensor | None = None,
        references: list[dict] | None = None,
    ) -> None:
        self.predictor = predictor
        self.target_embedding = target_embedding
        self.part_features = part_features  # (N, C) unit-length reference cells, for the score
        self.settings = settings or Settings()
        self.fusion_weights = fusion_weights  # (3,) for PerSAM-F
        if self.settings.method == "persam-f" and fusion_weights is None:
            raise ValueError("PerSAM-F needs fusion weights")
        self.references = references or []  # what the object was learnt from: [{"name", "size"}]
        self.reference_masks: list[np.ndarray] = []  # the references' masks (not saved in concepts)
        self.fit_seconds = 0.0
        # what this concept scores on its own reference(s): presence is judged relative to it (persam.album);
        # None for concepts saved before it was recorded
        self.reference_score: float | None = None
        # the colours of the object in the references (persam.presence: a look-alike of the same class seldom
        # has them); None for concepts saved before it was recorded
        self.presence_colour: np.ndarray | None = None
        # look-alikes flagged as not the object (persam.negatives): an object more like one of them is absent
        self.negatives: list = []
        # the logit level its delivered masks are cut at (persam.outline), fitted on the reference(s);
        # 0 (SAM's own cut) for concepts saved before it was recorded, or with Settings.fit_level off
        self.mask_level = 0.0

    @property
    def reference_mask(self) -> np.ndarray | None:
        """The first reference's mask (the one SAM made, when built from a prompt)."""
        return self.reference_masks[0] if self.reference_masks else None

    # ----------------------------------------------------------------- building
    @classmethod
    def from_reference(
        cls,
        image,
        mask=None,
        *,
        points: list[tuple[float, float, int]] | None = None,
        box: tuple[float, float, float, float] | None = None,
        method: str = DEFAULT_METHOD,
        settings: Settings | None = None,
        model: str = "vit_t",
        checkpoint: str | None = None,
        device: str = "cpu",
        sam=None,
        progress: bool = True,
        name: str | None = None,
    ) -> PerSAM:
        """Personalize from one reference ``image`` and its object ``mask``.

        Images may be paths, PIL images or arrays (EXIF orientation applied); any non-zero mask value is the
        object. Without a mask, give ``points`` [(x, y, label), ...] and/or a ``box`` (x0, y0, x1, y1):
        plain SAM then makes the reference mask (kept in :attr:`reference_mask`). ``method`` is "persam-f"
        (default: fits 2 weights in well under a second) or "persam" (training-free); ``settings`` overrides
        it. ``sam`` reuses an already loaded model; otherwise ``model``/``checkpoint`` are resolved (see
        :func:`persam.load_sam`). ``name`` labels the reference in saved concepts (default: its path).
        """
        sam = _model(sam, model, checkpoint, device, progress)
        predictor = SamPredictor(sam)
        if mask is None and not points and box is None:
            raise ValueError("give a reference mask, or points/box to make one")
        rgb = load_image(image)
        name = source_name(image, name, "reference image")
        if mask is None:
            check_prompt(points or [], box, rgb.shape[:2], name)
        ref_mask = load_reference_mask(mask, rgb) if mask is not None else None  # checked before encoding
        emb = predictor.encode(rgb)
        if ref_mask is None:
            ref_mask = prompt_mask(predictor, emb, points or [], box)
            if not ref_mask.any():
                raise InputError(f"{name}: SAM found no object at the reference prompt, try another point or box")
        return cls.from_embeddings(predictor, [emb], [ref_mask], settings or Settings.for_method(method), [name],
                                   images=[rgb])

    @classmethod
    def from_references(
        cls,
        images: Sequence,
        masks: Sequence,
        *,
        method: str = DEFAULT_METHOD,
        settings: Settings | None = None,
        model: str = "vit_t",
        checkpoint: str | None = None,
        device: str = "cpu",
        sam=None,
        progress: bool = True,
        names: list[str] | None = None,
    ) -> PerSAM:
        """Personalize from several views of the object: ``images[i]`` with its ``masks[i]``.

        The target embedding pools every reference's object features; PerSAM-F fits its weights on all
        references at once. ``names`` label the references in saved concepts (default: their paths).
        Other arguments as in :meth:`from_reference`.
        """
        if len(images) != len(masks) or not images:
            raise ValueError("give one mask per reference image (and at least one)")
        sam = _model(sam, model, checkpoint, device, progress)
        predictor = SamPredictor(sam)
        embs, ref_masks, rgbs = [], [], []
        for image, mask in zip(images, masks, strict=True):
            rgb = load_image(image)
            rgbs.append(rgb)
            ref_masks.append(load_reference_mask(mask, rgb))
            embs.append(predictor.encode(rgb))
        names = names or [source_name(image, None, f"reference image {i + 1}") for i, image in enumerate(images)]
        return cls.from_embeddings(predictor, embs, ref_masks, settings or Settings.for_method(method), names,
                                   images=rgbs)

    @classmethod
    def from_embedding(
        cls, predictor: SamPredictor, emb: ImageEmbedding, mask: np.ndarray, settings: Settings | None = None
    ) -> PerSAM:
        """Personalize from an already encoded reference image and its bool mask."""
        return cls.from_embeddings(predictor, [emb], [mask], settings)

    @classmethod
    def from_embeddings(
        cls,
        predictor: SamPredictor,
        embs: list[ImageEmbedding],
        masks: list[np.ndarray],
        settings: Settings | None = None,
        names: list[str] | None = None,
        images: list[np.ndarray] | None = None,
    ) -> PerSAM:
        """Personalize from already encoded references and their bool masks (PerSAM-F fits here).

        Without ``settings``, the default method (:data:`persam.settings.DEFAULT_METHOD`), as everywhere else.
        ``images`` (the references' RGB arrays) give the object's colours to the presence score.
        """
        settings = settings or Settings.for_method(DEFAULT_METHOD)
        img_size = predictor.model.img_size
        cells = torch.cat([reference_cells(e, m, img_size, settings.feature_mask_threshold) for e, m in zip(
            embs, masks, strict=True)])
        target = pool_target(cells, settings.target)
        names = names or [f"reference {i + 1}" for i in range(len(embs))]
        references = [{"name": n, "size": [int(e.original_size[1]), int(e.original_size[0])]}
                      for n, e in zip(names, embs, strict=True)]
        fitted = settings.method == "persam-f"
        # PerSAM-F starts from the paper's equal thirds; the fit below replaces them.
        start_weights = torch.full((3,), INITIAL_WEIGHT) if fitted else None
        persam = cls(predictor, target, part_features(cells), settings, start_weights, references)
        persam.reference_masks = list(masks)
        if fitted:
            start = time.perf_counter()
            persam.fusion_weights = persam._fit(embs, masks)
            persam.fit_seconds = time.perf_counter() - start
        if images is not None:
            from .presence import reference_histogram

            persam.presence_colour = reference_histogram(list(images), list(masks))
        pixels = list(images) if images is not None else [None] * len(embs)
        found, persam.reference_score = persam._find_references(embs, pixels)
        if settings.fit_level:
            persam.mask_level = fit_level(persam, embs, found, masks, pixels)
        return persam

    def _find_references(self, embs: list[ImageEmbedding], images: list[np.ndarray | None]
                         ) -> tuple[list[Result], float | None]:
        """What this concept finds in its own references, and the presence score it gives them (mean): the
        scale presence is judged on.

        Scored by the one presence hook (:func:`persam.presence.score_result`), as the search scores. The score
        is None when the concept does not even find itself (presence then falls back to
        :data:`FALLBACK_REFERENCE_SCORE`).
        """
        from .presence import find

        # find() is segment_embedding's search and returns its score (one decoding and score when it is off)
        found = [find(self, emb, rgb) for emb, rgb in zip(embs, images, strict=True)]
        mean = float(np.mean([score for _, score in found])) if found else 0.0
        return [result for result, _ in found], (mean if mean > 0 else None)

    def _fit(self, embs: list[ImageEmbedding], masks: list[np.ndarray]) -> torch.Tensor:
        """PerSAM-F: fit the fusion weights on the references' own first-step masks (decoder run once each)."""
        img_size = self.predictor.model.img_size
        logits, targets = [], []
        for emb, mask in zip(embs, masks, strict=True):
            first = self.first_decode(emb)
            h, w = (round(s * first.logits.shape[-1] / img_size) for s in emb.input_size)
            grid_mask = mask_to_grid(mask, img_size, first.logits.shape[-1])
            logits.append(first.logits[:, :h, :w])
            targets.append(grid_mask[:h, :w])
        return fit_fusion_weights(logits, targets, steps=self.settings.fit_steps, lr=self.settings.fit_lr)

    # ------------------------------------------------------------------ concepts
    def save(self, path: str | os.PathLike) -> None:
        """Write this personalization as a concept file (see :mod:`persam.concept`), atomically."""
        write_concept(path, *concept_contents(self))

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        *,
        sam=None,
        checkpoint: str | None = None,
        device: str = "cpu",
        progress: bool = True,
    ) -> PerSAM:
        """A saved concept, ready to segment. Its model is loaded by name unless ``sam`` is given; a concept
        made with another model or other weights is refused (:class:`InputError`)."""
        meta, arrays = read_concept(path)
        if sam is None:
            sam = _model(None, meta["model"], checkpoint, device, progress)
        return cls.from_concept(path, meta, arrays, sam)

    @classmethod
    def from_concept(cls, path: str | os.PathLike, meta: dict, arrays: dict, sam) -> PerSAM:
        """A concept already read by :func:`persam.concept.read_concept` (a shell checks it before loading
        the model, then builds from it without reading the file again)."""
        predictor = SamPredictor(sam)
        check_model(path, meta, arrays, sam, predictor.feature_source.name)
        state = concept_state(path, meta, arrays, sam.device)
        persam = cls(predictor, state.target_embedding, state.part_features, state.settings, state.fusion_weights,
                     state.references)
        persam.reference_score = state.reference_score
        persam.presence_colour = state.presence_colour
        persam.negatives = state.negatives
        persam.mask_level = state.mask_level
        return persam

    def exclude(self, image, name: str | None = None):
        """Learn that what this concept finds in ``image`` (a path, PIL image or HxWx3 array: a photo it got
        wrong) is *not* the object: a negative example (:func:`persam.negatives.exclude`), kept when saved."""
        from .negatives import exclude

        return exclude(self, image, name)

    # -------------------------------------------------------------- segmenting
    def segment(self, image) -> Result:
        """Find and segment the personalized object in ``image``.

        ``Result.score`` is SAM's predicted IoU of the final mask (clipped to [0, 1]) times its *part
        similarity*: for every feature cell of the reference object, the best cosine similarity with any
        feature cell under the found mask, averaged. It is 0 for an empty mask, close to 1 when the mask
        holds every part of the reference, and lower for a different object with only some similar parts
        (scores of the same object and of others overlap across references, so compare scores for one
        reference rather than across references).

        The mask is cut at the concept's own logit level (:attr:`mask_level`, fitted on its reference) and,
        with ``Settings.edges`` (the default), its outline snapped to the photo's edges (:mod:`persam.outline`);
        :meth:`segment_embedding` gives SAM's mask as the search found it.
        """
        start = time.perf_counter()
        rgb = load_image(image)
        emb = self.predictor.encode(rgb)
        result = self.segment_embedding(emb, image=rgb)
        if self.settings.zoom:
            from .refine import zoom_refine

            result = zoom_refine(self, emb, rgb, result)
        finish(self, emb, rgb, result)
        result.timings["total"] = time.perf_counter() - start
        return result

    @torch.inference_mode()
    def location_map(self, emb: ImageEmbedding) -> torch.Tensor:
        """The location confidence map: cosine similarity with the target embedding, (H, W) at image size, on
        the CPU (as masks are)."""
        img_size = self.predictor.model.img_size
        sim = cosine_map(self.target_embedding, emb.match_features)  # (h, w) on the padded grid
        sim_up = F.interpolate(sim[None, None], scale_factor=4, mode="bilinear", align_corners=False)
        return grid_to_image(sim_up, img_size, emb.input_size, emb.original_size)[0, 0].cpu()

    @torch.inference_mode()
    def first_decode(self, emb: ImageEmbedding, hint: Hint | None = None) -> FirstDecode:
        """Location prior -> clicks, guided attention and semantic prompt -> first mask logits.

        With a ``hint`` (video), the positive click is the most similar point inside ``hint.region`` and
        the hint's box and mask prompts are added.
        """
        s = self.settings
        p = self.predictor
        img_size = p.model.img_size
        sim_img = self.location_map(emb)
        w = sim_img.shape[1]
        x0, y0 = 0, 0
        search = sim_img
        if hint is not None and hint.region is not None:
            x0, y0, x1, y1 = hint.region
            search = sim_img[y0 : y1 + 1, x0 : x1 + 1]
        best = int(torch.argmax(search))
        sw = search.shape[1]
        points = [(float(x0 + best % sw), float(y0 + best // sw), 1)]
        if s.negative_point:
            worst = int(torch.argmin(sim_img))
            points.append((float(worst % w), float(worst // w), 0))
        if hint is not None:
            points += [(float(x), float(y), 0) for x, y in hint.negatives]

        attn_sim = None
        if s.guided_attention:
            z = (sim_img - sim_img.mean()) / sim_img.std()
            grid = emb.features.shape[-1]
            attn_sim = prior_to_grid(z, grid, img_size, emb.input_size).sigmoid().reshape(1, 1, 1, -1)
        target = self.target_embedding.reshape(1, 1, -1) if s.semantic_prompt else None
        coords, labels = point_arrays(points)
        multi = s.method == "persam-f"
        box = mask_input = None
        if hint is not None:
            box = np.asarray(hint.box, dtype=np.float32) if hint.box is not None else None
            mask_input = hint.logits[None] if hint.logits is not None else None
        out = p.predict(emb, coords, labels, box=box, mask_input=mask_input, multimask_output=multi,
                        attn_sim=attn_sim, target_embedding=target)
        return FirstDecode(points, out.logits, out.iou)

    @torch.inference_mode()
    def segment_embedding(self, emb: ImageEmbedding, hint: Hint | None = None,
                          image: np.ndarray | None = None) -> Result:
        """:meth:`segment` on an already encoded image (SAM's mask, not snapped to edges).

        With a ``hint`` (video): one decoding steered by it (:meth:`segment_once`). Without: persam's search
        (:func:`persam.presence.find`): when the first mask's presence score is unsure, the confidence map's
        other peaks (``settings.candidates``) are decoded too and the best kept, and missing parts are added
        (``settings.complete_parts``). ``image`` (the pixels ``emb`` was encoded from) lets that score use
        the object's colours; without it, the parts alone.
        """
        s = self.settings
        if hint is not None or (s.candidates <= 1 and not s.complete_parts):
            return self.segment_once(emb, hint)
        from .presence import find

        return find(self, emb, image)[0]

    def own_score(self) -> float:
        """The concept's own presence score on its reference(s), the scale its photos are judged on; a typical
        same-object score (:data:`FALLBACK_REFERENCE_SCORE`) for concepts saved before it was recorded, or
        while the concept is being made."""
        return float(self.reference_score) if self.reference_score else FALLBACK_REFERENCE_SCORE

    @torch.inference_mode()
    def segment_once(self, emb: ImageEmbedding, hint: Hint | None = None) -> Result:
        """One PerSAM decoding: location prior (or hint) -> first masks -> fusion -> cascaded refinement."""
        start = time.perf_counter()
        p = self.predictor
        first = self.first_decode(emb, hint)
        coords, labels = point_arrays(first.points)
        if self.fusion_weights is not None:  # PerSAM-F: fuse the 3 masks; both refinements use a box
            w = self.fusion_weights.to(first.logits)
            logits, iou = torch.einsum("k,khw->hw", w, first.logits), (w * first.iou).sum()
        else:
            logits, iou = first.logits[0], first.iou[0]
        box = None
        for step in range(self.settings.refinements):
            if step == 1 or self.fusion_weights is not None:
                box = mask_box(p.upscale(emb, logits[None])[0].numpy() > 0)
                if box is None:
                    break
            out = p.predict(emb, coords, labels, box=box, mask_input=logits[None], multimask_output=True)
            i = int(torch.argmax(out.iou))
            logits, iou = out.logits[i], out.iou[i]

        return self.make_result(emb, logits, iou, first.points, box, start)

    def make_result(self, emb: ImageEmbedding, logits: torch.Tensor, iou: torch.Tensor,
                    points: list[tuple[float, float, int]], box: tuple[int, int, int, int] | None,
                    start: float) -> Result:
        """The :class:`Result` of final low-res ``logits`` with SAM's predicted ``iou``: the full-size mask
        and its score; decoder seconds count from ``start``."""
        mask = self.predictor.upscale(emb, logits[None])[0].numpy() > 0
        similarity = self._part_similarity(emb.match_features, logits)
        score = float(np.clip(float(iou), 0, 1) * similarity) if mask.any() else 0.0
        timings = {"encoder": emb.seconds, "decoder": time.perf_counter() - start}
        return Result(mask, score, float(iou), similarity, points, box, timings, logits)

    def _part_similarity(self, features: torch.Tensor, logits: torch.Tensor) -> float:
        """Mean over reference cells of their best cosine match among the cells under a low-res mask."""
        found = cells_under(features, logits)  # (C, N_found)
        if found.shape[1] == 0:
            return 0.0
        best = (self.part_features.to(found) @ found).amax(dim=1)
        return float(best.mean().clamp(0.0, 1.0))


def _model(sam, model: str, checkpoint, device, progress: bool):
    return sam if sam is not None else load_sam(model, checkpoint, device=device, progress=progress)
