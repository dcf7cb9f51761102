"""Look-alikes a concept must not take: "not my dog" examples, from photos a person flagged as wrong.

MobileSAM's features say "a dog" far more than "*this* dog", so another dog of the same colours can score
above the threshold on its own. One flagged photo of it is enough to tell them apart: the object found
there is kept as a *negative example* (its cells and colours, as a reference keeps them), and a later object
is present only when it is more like the concept's reference than like every negative example -- the same
presence score (:func:`persam.presence.presence_score`: mutual parts x colour) against each. The same dog
in the flagged photo's other shots (one more photo of the neighbour's chow) then loses to that example,
while the concept's own photos, closer to their reference, keep winning.

Several concepts in one run do this among themselves (:mod:`persam.album`); a negative example is a concept
that is never reported, kept inside the concept file that it corrects.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from .grid import cells_under
from .predictor import ImageEmbedding
from .results import Result

#: an object is the look-alike when its score against the negative example beats its presence score by at
#: least this much: the example was cut from a photo of the album, in that album's light, so it needs a clear
#: win over the reference (chosen on the DreamBooth album, where 0.01-0.05 decide alike: bench/album_feedback.py)
MARGIN = 0.03


@dataclass
class Negative:
    """One look-alike: its unit-length feature cells (N, C) and its colour histogram."""

    name: str  # where it came from (the flagged photo's file name), for records and messages
    parts: torch.Tensor
    colour: np.ndarray


def negative_from(persam, name: str, emb: ImageEmbedding, image: np.ndarray, result: Result) -> Negative | None:
    """The negative example of ``persam``'s concept made from the object ``result`` it found in a flagged photo
    (``image``, encoded as ``emb``): its cells and colours taken as a reference's are; None when nothing was
    found there (nothing to learn from)."""
    from .presence import object_parts

    if not result.mask.any():
        return None
    return Negative(name, *object_parts(persam, emb, image, result.mask))


def exclude(persam, image, name: str | None = None) -> Negative:
    """Add to ``persam`` the negative example of what it finds in ``image`` (a path, PIL image or HxWx3 array),
    named ``name`` (default: the file's name) and return it; :class:`InputError` when nothing is found there.
    The object is found by the concept's own search, as albums find it."""
    from .errors import InputError
    from .io import load_image, source_name
    from .presence import find

    rgb = load_image(image)
    label = name or os.path.basename(source_name(image, None, "flagged photo"))
    emb = persam.predictor.encode(rgb)
    negative = negative_from(persam, label, emb, rgb, find(persam, emb, rgb)[0])
    if negative is None:
        raise InputError(f"{label}: the concept finds nothing in this photo, so there is nothing to exclude")
    persam.negatives.append(negative)
    return negative


def negative_score(negative: Negative, emb: ImageEmbedding, image: np.ndarray | None, result: Result) -> float:
    """How much ``result`` looks like the look-alike, on the presence score's scale (parts x colour; the
    parts alone without the photo's pixels); 0 when nothing was found."""
    from .presence import likeness

    return likeness(negative.parts, negative.colour, emb, image, result)


def closest_negative(negatives: list[Negative], emb: ImageEmbedding, image: np.ndarray | None,
                     result: Result) -> tuple[str, float] | None:
    """The negative example ``result`` looks most like, with that score (each as :func:`negative_score` gives
    it; the mask's cells and colours taken once for all); None without negatives."""
    from .presence import colour_histogram, likeness_of_cells

    if not negatives:
        return None
    if result.logits is None or not result.mask.any():
        return negatives[0].name, 0.0
    found = cells_under(emb.match_features, result.logits)
    colours = colour_histogram(image, result.mask) if image is not None else None
    scores = [(n.name, likeness_of_cells(n.parts, n.colour, found, colours)) for n in negatives]
    return max(scores, key=lambda item: item[1])


def rejected_by(negatives: list[Negative], emb: ImageEmbedding, image: np.ndarray | None, result: Result,
                score: float) -> str | None:
    """The name of the negative example that ``result`` (whose presence score is ``score``) looks clearly more
    like (by :data:`MARGIN`) than like the concept, or None: the object is then that look-alike, not the concept."""
    closest = closest_negative(negatives, emb, image, result)
    if closest is None or closest[1] < score + MARGIN:
        return None
    return closest[0]


def pack(negatives: list[Negative]) -> dict[str, np.ndarray]:
    """The concept-file arrays of the negatives (none without negatives): every cell in one float16 array,
    each example's cell count, their colours."""
    if not negatives:
        return {}
    return {
        "negative_parts": torch.cat([n.parts for n in negatives]).half().cpu().numpy(),
        "negative_sizes": np.array([n.parts.shape[0] for n in negatives], dtype=np.int64),
        "negative_colours": np.stack([np.asarray(n.colour, dtype=np.float32) for n in negatives]),
    }


def unpack(names: list[str], arrays: dict[str, np.ndarray], device: torch.device | str) -> list[Negative]:
    """The negatives stored by :func:`pack` (``names`` from the concept's metadata); ValueError when the arrays
    do not fit together."""
    if "negative_parts" not in arrays:
        return []
    parts, sizes, colours = arrays["negative_parts"], arrays.get("negative_sizes"), arrays.get("negative_colours")
    if sizes is None or colours is None or sizes.ndim != 1 or parts.ndim != 2:
        raise ValueError("negative examples incomplete")
    if len(names) != sizes.shape[0] or colours.shape[0] != sizes.shape[0] or int(sizes.sum()) != parts.shape[0]:
        raise ValueError("negative examples do not fit together")
    if (sizes <= 0).any():
        raise ValueError("a negative example without cells")
    out, start = [], 0
    for name, size, colour in zip(names, sizes.tolist(), colours, strict=True):
        cells = torch.from_numpy(parts[start:start + size]).float().to(device)
        out.append(Negative(str(name), cells, colour.astype(np.float32)))
        start += size
    return out
