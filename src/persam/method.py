"""Training-free PerSAM: personalize SAM from one reference image and mask, then find that object.

Steps for every target image (Zhang et al., *Personalize Segment Anything Model with One Shot*):

1. **Target embedding** -- the mean of the reference image's features under its (down-sampled) mask.
2. **Location confidence map** -- cosine similarity of that embedding with every feature of the target,
   upsampled to the image. Its maximum is a positive click, its minimum a negative click.
3. **Target-guided attention and target-semantic prompting** -- the normalised confidence map modulates the
   decoder's token-to-image attention, and the target embedding is added to the prompt tokens.
4. **Cascaded post-refinement** -- decode again with the first mask's logits as a mask prompt, then with the
   box of the best mask as well; keep the best-scoring mask.

Fixed defects of the paper's code: masks are read by value (0/1 masks used to give an empty target), the
prior is placed on the padded encoder grid as the image is (it was stretched over the padding on
non-square images), and an empty mask at any step ends in an empty result instead of a crash.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .errors import InputError
from .predictor import ImageEmbedding, SamPredictor
from .transforms import grid_to_image, pad_to_square, resize_image, resized_shape


@dataclass(frozen=True)
class Settings:
    """Method switches; the defaults are the paper's training-free PerSAM."""

    guided_attention: bool = True  # modulate token-to-image attention with the confidence map
    semantic_prompt: bool = True  # add the target embedding to the prompt tokens
    negative_point: bool = True  # the least similar location as a background click
    refinements: int = 2  # cascaded post-refinement steps (0, 1 or 2)
    # A feature cell belongs to the reference object when this fraction of it lies inside the mask.
    feature_mask_threshold: float = 0.5

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Result:
    """What :meth:`PerSAM.segment` found in one image."""

    mask: np.ndarray  # HxW bool at the image's original size
    score: float  # in [0, 1]: is the object here? (see PerSAM.segment)
    iou_prediction: float  # SAM's own estimate of the final mask's IoU
    similarity: float  # how well the mask's features explain the reference object's parts, in [0, 1]
    points: list[tuple[float, float, int]]  # (x, y, label) clicks used; label 1 = object, 0 = background
    box: tuple[int, int, int, int] | None  # x0, y0, x1, y1 (inclusive) box prompt of the last refinement
    timings: dict[str, float] = field(default_factory=dict)  # seconds: encoder, decoder, total

    @property
    def found(self) -> bool:
        return bool(self.mask.any())

    def to_record(self) -> dict:
        """JSON-ready summary (no mask)."""
        return {
            "score": round(self.score, 4),
            "iou_prediction": round(self.iou_prediction, 4),
            "similarity": round(self.similarity, 4),
            "area": int(self.mask.sum()),
            "points": [[round(x, 1), round(y, 1), int(label)] for x, y, label in self.points],
            "box": list(self.box) if self.box is not None else None,
            "seconds": {k: round(v, 4) for k, v in self.timings.items()},
        }


def mask_to_grid(mask: np.ndarray, img_size: int, grid: int) -> torch.Tensor:
    """Fraction of each encoder-grid cell covered by a full-resolution bool mask, (grid, grid) in [0, 1]."""
    size = resized_shape(mask.shape, img_size)
    resized = resize_image((mask.astype(np.uint8) * 255)[..., None].repeat(3, axis=2), size)[..., 0]
    x = pad_to_square(torch.from_numpy(resized.astype(np.float32) / 255.0)[None, None], img_size)
    return F.interpolate(x, (grid, grid), mode="bilinear", align_corners=False)[0, 0]


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Tight (x0, y0, x1, y1) box of a bool mask, None when empty."""
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    if ys.size == 0:
        return None
    return int(xs[0]), int(ys[0]), int(xs[-1]), int(ys[-1])


def cosine_map(target: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of a (C,) target with every location of (1, C, h, w) features -> (h, w)."""
    feats = F.normalize(features[0], dim=0)
    return torch.einsum("c,chw->hw", F.normalize(target, dim=0), feats)


def target_from_reference(
    emb: ImageEmbedding, mask: np.ndarray, img_size: int, threshold: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference features under the mask (N, C) and the cell weights used, from an encoded reference."""
    feats = emb.features[0]
    coverage = mask_to_grid(mask, img_size, feats.shape[-1]).to(feats.device)
    cells = coverage > threshold
    if not cells.any():  # object smaller than a cell: use the cells it covers most
        cells = coverage >= coverage.max() * 0.5
    return feats[:, cells].T, cells


class PerSAM:
    """A personalized segmenter: one reference object, segmented in any number of new images.

    Build it with :meth:`from_reference`; call :meth:`segment` on each target image.
    """

    def __init__(
        self,
        predictor: SamPredictor,
        target_embedding: torch.Tensor,
        reference_features: torch.Tensor,
        settings: Settings | None = None,
        reference_mask: np.ndarray | None = None,
    ) -> None:
        self.predictor = predictor
        self.target_embedding = target_embedding
        self.reference_features = F.normalize(reference_features, dim=1)
        self.settings = settings or Settings()
        self.reference_mask = reference_mask

    # ----------------------------------------------------------------- building
    @classmethod
    def from_reference(
        cls,
        image,
        mask=None,
        *,
        points: list[tuple[float, float, int]] | None = None,
        box: tuple[float, float, float, float] | None = None,
        model: str = "vit_t",
        checkpoint: str | None = None,
        device: str = "cpu",
        sam=None,
        settings: Settings | None = None,
        progress: bool = True,
    ) -> PerSAM:
        """Personalize from one reference ``image`` and its object ``mask``.

        Images may be paths, PIL images or arrays (EXIF orientation applied); any non-zero mask value is the
        object. Without a mask, give ``points`` [(x, y, label), ...] and/or a ``box`` (x0, y0, x1, y1):
        plain SAM then makes the reference mask (kept in :attr:`reference_mask`). ``sam`` reuses an already
        loaded model; otherwise ``model``/``checkpoint`` are resolved (see :func:`persam.load_sam`).
        """
        from .io import load_image, load_mask
        from .loading import load_sam

        if sam is None:
            sam = load_sam(model, checkpoint, device=device, progress=progress)
        predictor = SamPredictor(sam)
        rgb = load_image(image)
        emb = predictor.encode(rgb)
        if mask is not None:
            ref_mask = load_mask(mask, (rgb.shape[1], rgb.shape[0]), name=_name(mask, "reference mask"))
        elif points or box is not None:
            ref_mask = prompt_mask(predictor, emb, points or [], box)
        else:
            raise ValueError("give a reference mask, or points/box to make one")
        if not ref_mask.any():
            what = _name(mask, "reference mask") if mask is not None else "the reference prompt"
            raise InputError(f"{what}: the mask is empty, there is no object to personalize")
        return cls.from_embedding(predictor, emb, ref_mask, settings)

    @classmethod
    def from_embedding(
        cls, predictor: SamPredictor, emb: ImageEmbedding, mask: np.ndarray, settings: Settings | None = None
    ) -> PerSAM:
        """Personalize from an already encoded reference image and its bool mask."""
        settings = settings or Settings()
        feats, _ = target_from_reference(emb, mask, predictor.model.img_size, settings.feature_mask_threshold)
        return cls(predictor, feats.mean(0), feats, settings, mask)

    # -------------------------------------------------------------- segmenting
    def segment(self, image) -> Result:
        """Find and segment the personalized object in ``image``.

        ``Result.score`` is SAM's predicted IoU of the final mask (clipped to [0, 1]) times its *part
        similarity*: for every feature cell of the reference object, the best cosine similarity with any
        feature cell under the found mask, averaged. It is 0 for an empty mask, close to 1 when the mask
        holds every part of the reference, and lower for a different object with only some similar parts
        (on PerSeg objects with MobileSAM: about 0.83-0.91 for the same object, 0.70-0.85 for others, so
        compare scores for one reference rather than across references).
        """
        from .io import load_image

        start = time.perf_counter()
        emb = self.predictor.encode(load_image(image))
        result = self.segment_embedding(emb)
        result.timings["total"] = time.perf_counter() - start
        return result

    @torch.inference_mode()
    def segment_embedding(self, emb: ImageEmbedding) -> Result:
        """:meth:`segment` on an already encoded image."""
        start = time.perf_counter()
        s = self.settings
        p = self.predictor
        img_size = p.model.img_size
        sim = cosine_map(self.target_embedding, emb.features)  # (h, w) on the padded grid
        grid = sim.shape[-1]
        sim_up = F.interpolate(sim[None, None], scale_factor=4, mode="bilinear", align_corners=False)
        sim_img = grid_to_image(sim_up, img_size, emb.input_size, emb.original_size)[0, 0]

        w = sim_img.shape[1]
        best, worst = int(torch.argmax(sim_img)), int(torch.argmin(sim_img))
        points = [(float(best % w), float(best // w), 1)]
        if s.negative_point:
            points.append((float(worst % w), float(worst // w), 0))
        coords = np.array([pt[:2] for pt in points], dtype=np.float32)
        labels = np.array([pt[2] for pt in points], dtype=np.int64)

        attn_sim = None
        if s.guided_attention:
            z = (sim_img - sim_img.mean()) / sim_img.std()
            attn_sim = prior_to_grid(z, grid, img_size, emb.input_size).sigmoid().reshape(1, 1, 1, -1)
        target = self.target_embedding.reshape(1, 1, -1) if s.semantic_prompt else None

        out = p.predict(emb, coords, labels, multimask_output=False, attn_sim=attn_sim, target_embedding=target)
        logits, iou = out.logits[0], out.iou[0]
        box = None
        for step in range(s.refinements):
            if step == 1:
                box = mask_box(p.upscale(emb, logits[None])[0].numpy() > 0)
                if box is None:
                    break
            out = p.predict(emb, coords, labels, box=box, mask_input=logits[None], multimask_output=True)
            i = int(torch.argmax(out.iou))
            logits, iou = out.logits[i], out.iou[i]

        mask = p.upscale(emb, logits[None])[0].numpy() > 0
        similarity = self._part_similarity(emb.features, logits)
        score = float(np.clip(float(iou), 0, 1) * similarity) if mask.any() else 0.0
        decoder = time.perf_counter() - start
        timings = {"encoder": emb.seconds, "decoder": decoder}
        return Result(mask, score, float(iou), similarity, points, box, timings)

    def _part_similarity(self, features: torch.Tensor, logits: torch.Tensor) -> float:
        """Mean over reference cells of their best cosine match among the cells under a low-res mask."""
        grid = features.shape[-2:]
        inside = F.interpolate(logits[None, None], grid, mode="bilinear", align_corners=False)[0, 0] > 0
        if not inside.any():
            return 0.0
        found = F.normalize(features[0][:, inside], dim=0)  # (C, N_found)
        best = (self.reference_features @ found).amax(dim=1)
        return float(best.mean().clamp(0.0, 1.0))


def prior_to_grid(z: torch.Tensor, grid: int, img_size: int, input_size: tuple[int, int]) -> torch.Tensor:
    """Place an image-sized map on the padded (grid, grid) encoder square, aligned with the features.

    The image occupies the top-left ``input_size`` of the ``img_size`` square; the padding gets the map's
    minimum (no attention boost there). For a square image this is the paper's single interpolation.
    """
    h = max(1, round(grid * input_size[0] / img_size))
    w = max(1, round(grid * input_size[1] / img_size))
    small = F.interpolate(z[None, None], (h, w), mode="bilinear", align_corners=False)
    return pad_to_square(small, grid, value=float(z.min()))[0, 0]


def prompt_mask(
    predictor: SamPredictor,
    emb: ImageEmbedding,
    points: list[tuple[float, float, int]],
    box: tuple[float, float, float, float] | None,
) -> np.ndarray:
    """Plain SAM mask from clicks and/or a box (best of the multi-mask outputs for ambiguous prompts)."""
    coords = labels = None
    if points:
        coords = np.array([pt[:2] for pt in points], dtype=np.float32)
        labels = np.array([pt[2] for pt in points], dtype=np.int64)
    box_arr = np.asarray(box, dtype=np.float32) if box is not None else None
    single = box is not None or len(points) > 1
    out = predictor.predict(emb, coords, labels, box=box_arr, multimask_output=not single)
    i = int(torch.argmax(out.iou))
    return predictor.upscale(emb, out.logits[i : i + 1])[0].numpy() > 0


def _name(src, default: str) -> str:
    return str(src) if isinstance(src, (str,)) or hasattr(src, "__fspath__") else default
