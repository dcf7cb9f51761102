"""Geometry between original images and SAM's padded square input."""

from __future__ import annotations

import numpy as np
import torch

from persam.transforms import apply_coords, grid_to_image, image_to_grid, resize_image, resized_shape


def test_resized_shape_keeps_aspect_ratio():
    assert resized_shape((500, 741), 1024) == (691, 1024)
    assert resized_shape((2048, 2048), 1024) == (1024, 1024)
    assert resized_shape((100, 40), 256) == (256, 102)


def test_apply_coords_scales_x_and_y_separately():
    out = apply_coords(np.array([[741.0, 500.0], [0.0, 0.0]]), (500, 741), (691, 1024))
    assert np.allclose(out, [[1024.0, 691.0], [0.0, 0.0]])


def test_resize_image_is_identity_at_same_size():
    img = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    assert resize_image(img, (20, 30)) is img
    assert resize_image(img, (10, 15)).shape == (10, 15, 3)


def test_grid_maps_cover_only_the_image_part_of_the_square():
    # A non-square image (H=200, W=100) fills the left half of the 256 square.
    grid = torch.zeros(1, 1, 16, 16)
    grid[..., :, 8:] = 1.0  # padding columns
    img = grid_to_image(grid, 256, (256, 128), (200, 100))
    assert img.shape == (1, 1, 200, 100)
    assert img[..., :, :90].max() < 0.05  # padding does not leak into the image
    back = image_to_grid(torch.ones(1, 1, 200, 100), 16, 256, (256, 128), pad_value=-1.0)
    assert back.shape == (1, 1, 16, 16)
    assert torch.allclose(back[..., :, :7], torch.ones(1, 1, 16, 7))
    assert torch.allclose(back[..., :, 9:], -torch.ones(1, 1, 16, 7))
