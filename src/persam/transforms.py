"""Geometry between an original image and SAM's square input.

SAM resizes the longest side to ``img_size`` (1024), keeps the aspect ratio, and pads the bottom and
right edges. Every map that lives on the encoder's grid (features, the PerSAM location prior, low-res
mask logits) therefore covers the *padded* square, of which the image is only the top-left part.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


def resized_shape(original_size: tuple[int, int], img_size: int) -> tuple[int, int]:
    """(h, w) after scaling the longest side of ``original_size`` (h, w) to ``img_size``."""
    h, w = original_size
    scale = img_size / max(h, w)
    return int(h * scale + 0.5), int(w * scale + 0.5)


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear (antialiased) resize of an HxWxC uint8 image to (h, w), as SAM's reference pre-processing."""
    h, w = size
    if image.shape[:2] == (h, w):
        return image
    return np.array(Image.fromarray(image).resize((w, h), Image.BILINEAR))


def pad_to_square(x: torch.Tensor, img_size: int, value: float = 0.0) -> torch.Tensor:
    """Pad the last two dims of ``x`` on the bottom/right to ``img_size``."""
    h, w = x.shape[-2:]
    return F.pad(x, (0, img_size - w, 0, img_size - h), value=value)


def apply_coords(coords: np.ndarray, original_size: tuple[int, int], input_size: tuple[int, int]) -> np.ndarray:
    """Map (..., 2) pixel coordinates (x, y) of the original image into the resized input frame."""
    coords = np.asarray(coords, dtype=np.float32).copy()
    coords[..., 0] *= input_size[1] / original_size[1]
    coords[..., 1] *= input_size[0] / original_size[0]
    return coords


def grid_to_image(
    maps: torch.Tensor, img_size: int, input_size: tuple[int, int], original_size: tuple[int, int]
) -> torch.Tensor:
    """Upsample (B, K, h, w) maps on the padded square to the original image size (B, K, H, W)."""
    maps = F.interpolate(maps, (img_size, img_size), mode="bilinear", align_corners=False)
    maps = maps[..., : input_size[0], : input_size[1]]
    return F.interpolate(maps, original_size, mode="bilinear", align_corners=False)


def image_to_grid(
    maps: torch.Tensor, grid: int, img_size: int, input_size: tuple[int, int], pad_value: float
) -> torch.Tensor:
    """Inverse of :func:`grid_to_image`: (B, K, H, W) maps to the padded (B, K, grid, grid) square.

    Used to put a map computed on the original image (the PerSAM prior) back on the encoder's grid so
    it lines up with the features also on non-square images.
    """
    maps = F.interpolate(maps, input_size, mode="bilinear", align_corners=False)
    maps = pad_to_square(maps, img_size, pad_value)
    return F.interpolate(maps, (grid, grid), mode="bilinear", align_corners=False)
