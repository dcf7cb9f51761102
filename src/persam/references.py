"""The user's references, read and checked once, before any model is loaded.

A reference is a photo of the object with its mask, or one photo with clicks and/or a box from which SAM
makes the mask. :meth:`References.read` reads every file and checks every combination a user can get
wrong (a mask per photo, a mask of the photo's size, not empty, clicks on the image); :meth:`personalize`
then turns them into a :class:`~persam.method.PerSAM` without reading anything again.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .errors import InputError
from .io import load_image, load_reference_mask
from .prompts import check_prompt
from .settings import DEFAULT_METHOD


class UsageError(InputError):
    """The references were given in a combination that cannot work (say, two photos and one mask)."""


@dataclass
class References:
    """Reference photos as arrays, with their masks or with the prompt that makes the (single) mask."""

    images: list[np.ndarray]
    names: list[str]
    masks: list[np.ndarray] | None  # None: made by SAM from the prompt
    points: list[tuple[float, float, int]] = field(default_factory=list)  # (x, y, 1 object / 0 background)
    box: tuple[float, float, float, float] | None = None

    @classmethod
    def read(
        cls,
        images: Sequence[str | os.PathLike],
        masks: Sequence[str | os.PathLike] = (),
        *,
        points: Sequence[tuple[float, float]] = (),
        negative_points: Sequence[tuple[float, float]] = (),
        box: tuple[float, float, float, float] | None = None,
    ) -> References:
        """Read and check: one mask per photo, or, for one photo, clicks on the object and/or a box."""
        prompt = bool(points or negative_points or box)
        if masks and prompt:
            raise UsageError("give either reference masks or a point/box prompt, not both")
        if not images:
            raise UsageError("give at least one reference image")
        if prompt:
            if len(images) != 1:
                raise UsageError("a point/box prompt makes the mask of one reference; for several, give a mask each")
            if not points and box is None:
                raise UsageError("a background point needs a point or box on the object too")
        elif len(masks) != len(images):
            if not masks:
                raise UsageError("each reference image needs a mask (or, for one reference, a point or box)")
            raise UsageError(f"{len(images)} reference images but {len(masks)} masks: give one mask per image")
        names = [os.fspath(p) for p in images]
        arrays = [load_image(p) for p in images]
        if prompt:
            clicks = [(float(x), float(y), 1) for x, y in points]
            clicks += [(float(x), float(y), 0) for x, y in negative_points]
            check_prompt(clicks, box, arrays[0].shape[:2], names[0])
            return cls(arrays, names, None, clicks, box)
        ref_masks = [load_reference_mask(m, a) for m, a in zip(masks, arrays, strict=True)]
        return cls(arrays, names, ref_masks)

    @property
    def from_prompt(self) -> bool:
        return self.masks is None

    def personalize(self, sam, method: str = DEFAULT_METHOD, settings=None):
        """The :class:`~persam.method.PerSAM` of these references, on an already loaded ``sam``."""
        from .method import PerSAM

        if self.masks is None:
            return PerSAM.from_reference(self.images[0], points=self.points, box=self.box, method=method,
                                         settings=settings, sam=sam, name=self.names[0])
        return PerSAM.from_references(self.images, self.masks, method=method, settings=settings, sam=sam,
                                      names=self.names)
