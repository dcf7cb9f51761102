"""Following personalized objects from frame to frame: the video tracker, one encoded frame at a time.

Three schemes, all built on :class:`~persam.method.PerSAM`:

* ``"per-frame"`` -- every frame is a new image (no temporal cue): PerSAM's image method as it is.
* ``"paper"`` -- the paper's video script: the two most similar points, plus the centre and the box of the
  previous frame's mask (grown by 10 px) as prompts; the largest of SAM's three masks, then two refinements.
  It carries nothing but that box forward, so once the box drifts off the object it never comes back.
* ``"persam"`` (default) -- PerSAM-F per frame, steered by where the object just was: the positive click is
  the most similar point inside the previous box (grown by ``box_margin``), and that box is a box prompt. A
  frame whose score falls below ``recheck`` x the reference frame's own score is searched over the whole
  image as well, and the better-scoring of the two masks kept: a partial mask cannot lock the next frames into
  its box. A frame whose score falls below ``presence`` x the reference score counts as "object absent"
  (empty mask); the next frame then searches the whole image again (re-detection by the location prior).
  Several objects are resolved per pixel by the highest mask logit.

Measured on davis2016-train-subset (see the README): a 5% box margin beats 0% / 2% (fast objects escape)
and 10% (a loose box prompt grows the mask); the previous logits as a mask prompt and separately fitted
fusion weights for box-prompted decodings scored lower, so they are off. ``recheck`` is on: it costs a little
J&F in f32 but keeps tracks that small feature differences (the encoder's mixed precision) would otherwise lose.

The tracker holds only the previous frame's box and logits per object, so memory does not grow with the
length of the video.

Whole videos (reading frames, the reference frame, tracking backwards, resuming) are
:func:`persam.video.segment_video`, built on :class:`VideoTracker`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from .edges import snap_labels
from .grid import mask_box
from .method import Hint, PerSAM
from .predictor import ImageEmbedding
from .prompts import point_arrays
from .results import Result
from .settings import Settings, VideoSettings

#: PerSAM settings of the paper's video script: mean/2 + max/2 target, positive clicks only, no guided
#: attention or semantic prompt (its decoder calls pass neither), SAM's masks as they are.
PAPER_VIDEO_SETTINGS = Settings(method="persam", target="mean-max", guided_attention=False,
                                semantic_prompt=False, negative_point=False, edges=False, fit_level=False)


def grow_box(box: tuple[int, int, int, int], margin: float, pixels: int, size: tuple[int, int]
             ) -> tuple[int, int, int, int]:
    """``box`` grown by ``margin`` x its width/height plus ``pixels`` on every side, clipped to (H, W)."""
    x0, y0, x1, y1 = box
    h, w = size
    dx = margin * (x1 - x0 + 1) + pixels
    dy = margin * (y1 - y0 + 1) + pixels
    return (max(0, int(x0 - dx)), max(0, int(y0 - dy)), min(w - 1, int(x1 + dx)), min(h - 1, int(y1 + dy)))


@dataclass
class ObjectFrame:
    """One object in one frame."""

    object_id: int
    present: bool
    result: Result  # its mask is empty when the object is judged absent (or lost to another object)

    def to_record(self) -> dict:
        return {"id": self.object_id, "present": self.present, **self.result.to_record()}


@dataclass
class FrameResult:
    """Every object in one frame."""

    labels: np.ndarray  # (H, W) uint8 object ids, 0 = background
    objects: list[ObjectFrame]
    seconds: dict[str, float] = field(default_factory=dict)
    # Where each object's track stands after this frame (its last box; None: searching the whole frame).
    # A run saved with it resumes from this frame exactly as if it had not stopped.
    track: dict[int, tuple[int, int, int, int] | None] = field(default_factory=dict)

    def mask(self, object_id: int) -> np.ndarray:
        return self.labels == object_id


class ObjectTrack:
    """One object followed through a video: its personalization and where it was last seen."""

    def __init__(self, persam: PerSAM, object_id: int, settings: VideoSettings) -> None:
        self.persam = persam
        self.object_id = object_id
        self.settings = settings
        self.box: tuple[int, int, int, int] | None = None  # last box where the object was present
        self.logits: torch.Tensor | None = None
        self.reference_score = 1.0

    def start(self, emb: ImageEmbedding, mask: np.ndarray) -> None:
        """The reference frame: the object is where its mask is; its own score calibrates presence."""
        self.box = mask_box(mask)
        if self.settings.scheme == "persam":
            own = self.persam.segment_once(emb, self._hint(emb))
            self.reference_score = own.score if own.score > 0 else 1.0

    def restore(self, box: tuple[int, int, int, int] | None) -> None:
        """Continue from a saved frame: the object was last seen in ``box`` (None: not seen)."""
        self.box = tuple(int(v) for v in box) if box is not None else None
        self.logits = None

    def _hint(self, emb: ImageEmbedding) -> Hint | None:
        if self.box is None:
            return None
        region = grow_box(self.box, self.settings.box_margin, 0, emb.original_size)
        return Hint(region=region, box=region if self.settings.box_prompt else None,
                    logits=self.logits if self.settings.mask_prompt else None)

    def step(self, emb: ImageEmbedding) -> ObjectFrame:
        """Segment this object in one frame and remember where it was."""
        scheme = self.settings.scheme
        if scheme == "per-frame":
            result = self.persam.segment_once(emb)
            return ObjectFrame(self.object_id, result.found, result)
        if scheme == "paper":
            result = paper_video_step(self.persam, emb, self.box)
            if result.found:
                self.box = mask_box(result.mask)
            return ObjectFrame(self.object_id, result.found, result)

        hint = self._hint(emb)
        result = self.persam.segment_once(emb, hint)
        if hint is not None and result.score < self.settings.recheck * self.reference_score:
            # unsure where the previous box led: search the whole frame too, keep the better of the two
            found = self.persam.segment_once(emb)
            if found.score > result.score:
                result = found
        present = result.found and result.score >= self.settings.presence * self.reference_score
        if present:
            self.box, self.logits = mask_box(result.mask), result.logits
        else:
            self.box = self.logits = None  # search the whole next frame
            result.mask = np.zeros_like(result.mask)
        return ObjectFrame(self.object_id, present, result)


@torch.inference_mode()
def paper_video_step(persam: PerSAM, emb: ImageEmbedding, prev_box: tuple[int, int, int, int] | None) -> Result:
    """One frame of the paper's video script (``persam_video.py``), with its defects fixed.

    Prompts: the two most similar points, and (when there is a previous mask) the centre of its box grown
    by 10 px as a third positive click and that box as a box prompt. The largest of the three masks is
    refined with itself as a mask prompt, then with its box too; the best-scoring mask is kept. Fixed:
    the paper picked the "largest" mask by areas stored in uint8 (so modulo 256), and crashed on an empty
    mask.
    """
    start = time.perf_counter()
    p = persam.predictor
    sim = persam.location_map(emb)
    w = sim.shape[1]
    top = torch.topk(sim.flatten(), 2).indices.tolist()
    points = [(float(i % w), float(i // w), 1) for i in top]
    box = None
    if prev_box is not None:
        box = grow_box(prev_box, 0.0, 10, emb.original_size)
        points.append(((box[0] + box[2]) // 2, (box[1] + box[3]) // 2, 1))
    coords, labels = point_arrays(points)
    box_arr = np.asarray(box, dtype=np.float32) if box is not None else None
    out = p.predict(emb, coords, labels, box=box_arr, multimask_output=True)
    areas = (out.logits > 0).flatten(1).sum(1)
    logits = out.logits[int(torch.argmax(areas))]
    out = p.predict(emb, coords, labels, mask_input=logits[None], multimask_output=True)
    i = int(torch.argmax(out.iou))
    logits, iou = out.logits[i], out.iou[i]
    box = mask_box(p.upscale(emb, logits[None])[0].numpy() > 0)
    if box is not None:
        out = p.predict(emb, coords, labels, box=np.asarray(box, dtype=np.float32), mask_input=logits[None],
                        multimask_output=True)
        i = int(torch.argmax(out.iou))
        logits, iou = out.logits[i], out.iou[i]
    return persam.make_result(emb, logits, iou, points, box, start)


class VideoTracker:
    """Several objects followed together; the frame is encoded once for all of them."""

    def __init__(self, persams: list[PerSAM], object_ids: list[int] | None = None,
                 settings: VideoSettings | None = None) -> None:
        if not persams:
            raise ValueError("give at least one personalized object")
        self.settings = settings or VideoSettings()
        ids = object_ids or list(range(1, len(persams) + 1))
        if len(ids) != len(persams) or len(set(ids)) != len(ids) or not all(0 < i < 256 for i in ids):
            raise ValueError("object ids must be distinct, in 1..255, one per object")
        self.tracks = [ObjectTrack(p, i, self.settings) for p, i in zip(persams, ids, strict=True)]
        self.predictor = persams[0].predictor

    def start(self, emb: ImageEmbedding, masks: list[np.ndarray]) -> None:
        """Initialise from the reference frame (already encoded) and its per-object masks."""
        for track, mask in zip(self.tracks, masks, strict=True):
            track.start(emb, mask)

    @torch.inference_mode()
    def step(self, emb: ImageEmbedding, image: np.ndarray | None = None) -> FrameResult:
        """Segment every object in one encoded frame. With the frame's pixels (``image``, HxWx3 uint8) and the
        objects' ``Settings.edges`` on, the masks given back are snapped to the frame's edges
        (:mod:`persam.edges`); what the tracker carries to the next frame is SAM's own mask either way."""
        start = time.perf_counter()
        objects = [track.step(emb) for track in self.tracks]
        labels = self._labels(emb, objects)
        if image is not None and self.tracks[0].persam.settings.edges:
            labels = snap_labels(image, labels, [o.object_id for o in objects])
        for obj in objects:  # what each object finally holds after overlaps are resolved
            obj.result.mask = labels == obj.object_id
        seconds = {"encoder": emb.seconds, "decoder": time.perf_counter() - start}
        return FrameResult(labels, objects, seconds, {t.object_id: t.box for t in self.tracks})

    def restore(self, track: dict[int, tuple[int, int, int, int] | None]) -> None:
        """Continue from a saved :attr:`FrameResult.track` (after :meth:`start` on the reference frame)."""
        for t in self.tracks:
            t.restore(track.get(t.object_id))

    def _labels(self, emb: ImageEmbedding, objects: list[ObjectFrame]) -> np.ndarray:
        """One id per pixel: where masks overlap, the object with the highest logit there wins."""
        h, w = emb.original_size
        labels = np.zeros((h, w), dtype=np.uint8)
        found = [o for o in objects if o.result.mask.any()]
        if len(found) == 1:
            labels[found[0].result.mask] = found[0].object_id
        elif found:
            stack = torch.stack([o.result.logits for o in found])
            full = self.predictor.upscale(emb, stack).numpy()
            full = np.where(np.stack([o.result.mask for o in found]), full, -np.inf)
            best = full.argmax(0)
            claimed = np.isfinite(full.max(0))
            ids = np.array([o.object_id for o in found], dtype=np.uint8)
            labels[claimed] = ids[best[claimed]]
        return labels


def video_persam_settings(scheme: str, method: str) -> Settings:
    """The PerSAM settings each scheme runs on: the paper's script has its own; the others follow ``method``,
    with SAM's cut at 0 (frames keep SAM's outline: a fitted level measured no better on DAVIS)."""
    return PAPER_VIDEO_SETTINGS if scheme == "paper" else Settings.for_method(method, fit_level=False)
