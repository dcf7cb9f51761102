"""Masks and features on the encoder's grid: the target embedding, the location prior, mask boxes.

SAM's image embedding is a (C, 64, 64) grid over the padded 1024 square; the helpers here move masks and
maps between the image and that grid exactly as the image itself is resized and padded.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .predictor import ImageEmbedding
from .transforms import pad_to_square, resize_image, resized_shape


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


def reference_cells(emb: ImageEmbedding, mask: np.ndarray, img_size: int, threshold: float) -> torch.Tensor:
    """Features (N, C) of the encoder-grid cells that lie inside the reference mask."""
    feats = emb.match_features[0]
    coverage = mask_to_grid(mask, img_size, feats.shape[-1]).to(feats.device)
    cells = coverage > threshold
    if not cells.any():  # object smaller than a cell: use the cells it covers most
        cells = coverage >= coverage.max() * 0.5
    return feats[:, cells].T


def pool_target(cells: torch.Tensor, pooling: str) -> torch.Tensor:
    """The target embedding (C,) from reference cells (N, C): their mean, or mean/2 + max/2 (PerSAM-F)."""
    if pooling == "mean-max":
        return cells.mean(0) / 2 + cells.amax(0) / 2
    return cells.mean(0)


def part_features(cells: torch.Tensor) -> torch.Tensor:
    """Unit-length reference cells, stored at half precision (the score needs no more; concepts stay small)."""
    return F.normalize(cells.float(), dim=1).half().float()


def prior_to_grid(z: torch.Tensor, grid: int, img_size: int, input_size: tuple[int, int]) -> torch.Tensor:
    """Place an image-sized map on the padded (grid, grid) encoder square, aligned with the features.

    The image occupies the top-left ``input_size`` of the ``img_size`` square; the padding gets the map's
    minimum (no attention boost there). For a square image this is the paper's single interpolation.
    """
    h = max(1, round(grid * input_size[0] / img_size))
    w = max(1, round(grid * input_size[1] / img_size))
    small = F.interpolate(z[None, None], (h, w), mode="bilinear", align_corners=False)
    return pad_to_square(small, grid, value=float(z.min()))[0, 0]


def components(mask: torch.Tensor) -> torch.Tensor:
    """Labels of the 8-connected blobs of a (h, w) bool mask: 0 off the mask, one id per blob (not
    consecutive). Label propagation by 3x3 max pooling (no SciPy here); a mask of a few hundred cells a
    side converges in as many steps as its longest blob's length."""
    h, w = mask.shape
    on = mask.float()
    labels = torch.arange(1, h * w + 1, dtype=torch.float32, device=mask.device).reshape(h, w) * on
    for _ in range(h * w):
        grown = F.max_pool2d(labels[None, None], 3, stride=1, padding=1)[0, 0] * on
        if torch.equal(grown, labels):
            break
        labels = grown
    return labels.long()


def cells_under(features: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """The unit-length feature cells (C, M) of ``features`` (1, C, h, w) under a mask's low-res ``logits``
    (resized to the feature grid, > 0); M = 0 for an empty mask."""
    inside = F.interpolate(logits.float()[None, None], features.shape[-2:], mode="bilinear",
                           align_corners=False)[0, 0] > 0
    return F.normalize(features[0][:, inside.to(features.device)].float(), dim=0)
