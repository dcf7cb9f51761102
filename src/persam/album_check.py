"""A second look at an album's present photos: is each one about as like the object as the album's best matches?

One photo at a time, a look-alike (the neighbour's dog) can score above the presence threshold: MobileSAM's
features say "a dog" more than "this dog". Across the album there is more to go on: the photos a concept is
*sure* of (a score of at least :data:`VIEW_SCORE` x its reference's, the reference photo itself aside) show
the object in this album's light and poses. The check takes up to :data:`VIEWS` of them as extra views of
the object (average query expansion, Chum et al., "Total Recall", ICCV 2007): every present photo's album
score is the mean of its own score and its likeness to each view but itself
(:func:`persam.presence.likeness_of_cells`: parts both ways x colours), and it stays present when that is at
least :data:`RATIO` x the views' own album scores (each view's the same mean, over the reference and the other
views: the bar is measured the way the photos are) and never below the presence threshold. It only ever
turns present photos absent, and with no sure photo it changes nothing (measured in
``bench/album_expansion.py`` and ``bench/album_light.py``).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from . import presence
from .predictor import ImageEmbedding

#: the album's best photos taken as extra views of the object, at most
VIEWS = 3
#: a photo is a view when its score is at least this x the concept's reference score: the score persam's
#: search calls sure (no other candidate looked at)
VIEW_SCORE = presence.SURE
#: ... and below this: a photo scoring about what the reference scores itself is the reference photo (or a
#: copy of it), which shows nothing new of the object and would only raise the bar
COPY_SCORE = 0.97
#: a present photo stays present when its album score is at least this x the views' mean album score: the
#: ratio that, with colours as shot, takes exactly the decisions of the previous rule (0.85 x the views' own
#: scores, chosen on the DreamBooth album with bench/album_expansion.py; see the README's albums section)
RATIO = 0.88


#: cells kept of one found object, at most (a regular subsample beyond): the check holds every present photo's
#: cells at once, half precision, so this bounds its memory (256 KB per photo with MobileSAM's 256 channels)
MAX_CELLS = 512


@dataclass
class Found:
    """What a concept found in one present photo, for the check."""

    key: Hashable  # the caller's name for it (photo, concept)
    score: float  # its presence score / the concept's reference score
    cells: torch.Tensor  # (C, M) unit-length feature cells under its mask
    colour: np.ndarray  # its colour histogram (presence.colour_histogram)


@dataclass
class Verdict:
    """The check's answer for one present photo."""

    present: bool
    score: float  # the album score: the mean of its score and its likeness to each view
    threshold: float


def describe(persam, emb: ImageEmbedding, image: np.ndarray, mask: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    """The cells (C, M; half precision, at most :data:`MAX_CELLS`) and colour histogram of the object under
    ``mask`` in an encoded photo, taken as ``persam``'s reference's are (so that a found object can serve as a
    view): :func:`persam.presence.object_parts`, kept as the check keeps them."""
    cells, colour = presence.object_parts(persam, emb, image, mask)
    return bounded(cells.T), colour


def bounded(cells: torch.Tensor) -> torch.Tensor:
    """Cells (C, M) as the check keeps them: half precision, at most :data:`MAX_CELLS` (evenly spaced)."""
    if cells.shape[1] > MAX_CELLS:
        cells = cells[:, torch.linspace(0, cells.shape[1] - 1, MAX_CELLS).round().long()]
    return cells.half()


def choose_views(found: Sequence[Found], views: int = VIEWS, view_score: float = VIEW_SCORE) -> list[Found]:
    """The album's best photos that are sure enough to serve as extra views of the object, best first."""
    fresh = [f for f in found if view_score <= f.score < COPY_SCORE]
    return sorted(fresh, key=lambda f: -f.score)[:views]


def check(found: Sequence[Found], threshold: float, views: int = VIEWS, view_score: float = VIEW_SCORE,
          ratio: float = RATIO) -> dict[Hashable, Verdict]:
    """The verdict on every present photo of one concept (``found``), with ``threshold`` the album's presence
    threshold (x the reference score); empty when no photo is sure enough to serve as a view."""
    chosen = choose_views(found, views, view_score)
    if not chosen:
        return {}

    def album_score(f: Found) -> float:
        likes = [presence.likeness_of_cells(v.cells.T.float(), v.colour, f.cells.float(), f.colour)
                 for v in chosen if v is not f]
        return (f.score + sum(likes)) / (1 + len(likes))

    scores = {id(f): album_score(f) for f in found}
    level = float(np.mean([scores[id(v)] for v in chosen]))  # the views' own album scores
    bar = max(threshold, ratio * level)
    return {f.key: Verdict(scores[id(f)] >= bar, scores[id(f)], bar) for f in found}
