"""What an album run found in one photo: each concept's decision and every present instance, as a label map."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .grid import mask_box
from .results import Result


@dataclass
class Instance:
    """One present instance of a concept in a photo."""

    id: int  # its value in the label map (1..N)
    concept: str
    score: float  # presence score
    mask: np.ndarray  # HxW bool, after overlaps with other instances were resolved
    result: Result  # the decoding it came from (its own mask before overlaps were resolved)
    present: bool = True

    @property
    def box(self) -> tuple[int, int, int, int] | None:
        """(x0, y0, x1, y1) of the mask, inclusive."""
        return mask_box(self.mask)

    @property
    def area(self) -> int:
        return int(self.mask.sum())

    def to_record(self) -> dict:
        box = self.box
        return {"id": self.id, "concept": self.concept, "score": round(self.score, 4), "present": self.present,
                "box": list(box) if box is not None else None, "area": self.area}


@dataclass
class ConceptFinding:
    """What one concept gave on a photo: its first (best-peak) decoding and the decision on it."""

    name: str
    result: Result  # result.present is set; its mask is emptied when absent
    score: float  # presence score of that decoding
    present: bool
    reference_score: float
    # the concept that scored this decoding's object higher and took it (several concepts in one run)
    taken_by: str | None = None
    # the concept's negative example (a flagged look-alike, persam.negatives) this object is more like
    rejected_by: str | None = None

    def to_record(self) -> dict:
        record = self.result.to_record()
        record.pop("seconds", None)
        record["score"] = round(self.score, 4)
        if self.taken_by is not None:
            record["taken_by"] = self.taken_by
        if self.rejected_by is not None:
            record["rejected_by"] = self.rejected_by
        return record


@dataclass
class Findings:
    """Everything found in one photo: the label map of instance ids, the instances, each concept's decision."""

    labels: np.ndarray  # HxW uint8: 0 background, i = instance i
    instances: list[Instance]  # present ones, ids 1..N in order
    concepts: list[ConceptFinding]
    palette: bool  # write the mask as a palette PNG of ids (else 0/255: one concept, one instance)
    timings: dict[str, float] = field(default_factory=dict)  # seconds: encoder, decoder, total
    cached: bool | None = None  # encoder features read from the embedding cache (None: no cache)

    @property
    def mask(self) -> np.ndarray:
        """Every instance together, HxW bool."""
        return self.labels > 0

    @property
    def present(self) -> bool:
        return bool(self.instances)

    @property
    def score(self) -> float:
        """The best score seen: of the present instances, or of the concepts' decodings when none is present."""
        scores = [i.score for i in self.instances] + [c.score for c in self.concepts]
        return max(scores, default=0.0)

    @property
    def best(self) -> ConceptFinding:
        """The concept with the highest score (the first on ties)."""
        return max(self.concepts, key=lambda c: c.score)

    @property
    def points(self) -> list[tuple[float, float, int]]:
        return self.best.result.points

    @property
    def box(self) -> tuple[int, int, int, int] | None:
        return self.best.result.box

    def to_record(self) -> dict:
        """The results.jsonl fields of this photo (the run adds image, mask and overlay)."""
        best = self.best.result.to_record()
        record = {
            "width": int(self.labels.shape[1]),
            "height": int(self.labels.shape[0]),
            "present": self.present,
            "score": round(self.score, 4),
            "iou_prediction": best["iou_prediction"],
            "similarity": best["similarity"],
            "area": int(self.mask.sum()),
            "points": best["points"],
            "box": best["box"],
            "instances": [i.to_record() for i in self.instances],
        }
        if len(self.concepts) > 1:
            record["concepts"] = {c.name: c.to_record() for c in self.concepts}
        elif self.concepts and self.concepts[0].rejected_by is not None:
            record["rejected_by"] = self.concepts[0].rejected_by
        if self.cached is not None:
            record["cached"] = self.cached
        record["seconds"] = {k: round(v, 4) for k, v in self.timings.items()}
        return record
