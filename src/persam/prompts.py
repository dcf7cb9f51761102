"""Prompts: clicks and boxes checked against the image, turned into arrays, and plain SAM masks made from them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .errors import InputError
from .predictor import ImageEmbedding, SamPredictor


def check_prompt(points: Sequence[tuple[float, float, int]], box: Sequence[float] | None, size: tuple[int, int],
                 name: str) -> None:
    """Clicks must lie on the image and a box must overlap it: anything else would make a nonsense mask."""
    h, w = size
    for x, y, _ in points:
        if not (0 <= x < w and 0 <= y < h):
            raise InputError(f"{name}: the point {x:g},{y:g} is outside the image ({w}x{h} pixels)")
    if box is not None:
        x0, y0, x1, y1 = box
        if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h:
            raise InputError(f"{name}: the box {x0:g},{y0:g},{x1:g},{y1:g} is outside the image ({w}x{h} pixels)")


def prompt_mask(
    predictor: SamPredictor,
    emb: ImageEmbedding,
    points: list[tuple[float, float, int]],
    box: tuple[float, float, float, float] | None,
) -> np.ndarray:
    """Plain SAM mask from clicks and/or a box (best of the multi-mask outputs for ambiguous prompts)."""
    coords, labels = point_arrays(points) if points else (None, None)
    box_arr = np.asarray(box, dtype=np.float32) if box is not None else None
    single = box is not None or len(points) > 1
    out = predictor.predict(emb, coords, labels, box=box_arr, multimask_output=not single)
    i = int(torch.argmax(out.iou))
    return predictor.upscale(emb, out.logits[i : i + 1])[0].numpy() > 0


def point_arrays(points: list[tuple[float, float, int]]) -> tuple[np.ndarray, np.ndarray]:
    coords = np.array([pt[:2] for pt in points], dtype=np.float32)
    labels = np.array([pt[2] for pt in points], dtype=np.int64)
    return coords, labels
