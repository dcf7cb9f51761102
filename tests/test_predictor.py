"""SamPredictor: the encoder's input (resize, normalise, pad) as SAM's reference pre-processing makes it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from persam.predictor import SamPredictor

from .conftest import random_image


@pytest.mark.parametrize("hw", [(300, 500), (500, 300), (64, 64), (2000, 700)])
def test_preprocess_is_resize_normalise_pad(tiny_t, hw):
    """Longest side to img_size (PIL bilinear), (x - mean) / std per channel, zeros bottom/right."""
    predictor = SamPredictor(tiny_t)
    s = tiny_t.img_size
    image = random_image(*hw)
    x, size = predictor.preprocess(image)

    scale = s / max(hw)
    expected_size = (int(hw[0] * scale + 0.5), int(hw[1] * scale + 0.5))
    assert size == expected_size
    resized = np.array(Image.fromarray(image).resize(expected_size[::-1], Image.BILINEAR), dtype=np.float32)
    mean = tiny_t.pixel_mean.flatten()
    std = tiny_t.pixel_std.flatten()
    normalised = (torch.from_numpy(resized).permute(2, 0, 1) - mean[:, None, None]) / std[:, None, None]
    expected = F.pad(normalised, (0, s - size[1], 0, s - size[0]))[None]
    assert x.shape == (1, 3, s, s) and x.dtype == torch.float32
    torch.testing.assert_close(x, expected, rtol=0, atol=1e-6)
    assert not x[..., size[0]:, :].any() and not x[..., size[1]:].any()


def test_preprocess_does_not_touch_the_image(tiny_t):
    image = random_image(40, 90)
    before = image.copy()
    SamPredictor(tiny_t).preprocess(image)
    np.testing.assert_array_equal(image, before)
