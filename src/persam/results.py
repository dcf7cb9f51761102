"""What a segmentation returns: the mask, how sure persam is, and the prompts it used."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


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
    logits: torch.Tensor | None = field(default=None, repr=False)  # (4h, 4w) low-res logits of the mask
    present: bool | None = None  # the album's decision (persam.album); None: not judged

    @property
    def found(self) -> bool:
        return bool(self.mask.any())

    def to_record(self) -> dict:
        """JSON-ready summary (no mask); ``present`` only when it was judged."""
        record = {} if self.present is None else {"present": bool(self.present)}
        return record | {
            "score": round(self.score, 4),
            "iou_prediction": round(self.iou_prediction, 4),
            "similarity": round(self.similarity, 4),
            "area": int(self.mask.sum()),
            "points": [[round(x, 1), round(y, 1), int(label)] for x, y, label in self.points],
            "box": list(self.box) if self.box is not None else None,
            "seconds": {k: round(v, 4) for k, v in self.timings.items()},
        }
