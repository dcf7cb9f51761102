"""The Segment Anything model: image encoder + prompt encoder + mask decoder."""

from __future__ import annotations

import torch
from torch import nn

from .config import PIXEL_MEAN, PIXEL_STD
from .mask_decoder import MaskDecoder
from .prompt_encoder import PromptEncoder


class Sam(nn.Module):
    """Holds SAM's three parts; pre- and post-processing live in :mod:`persam.predictor`."""

    mask_threshold: float = 0.0
    # Identity of the weights, recorded in saved concepts so they are only reused with the same model.
    model_name: str = ""
    weights_sha256: str | None = None  # None for models not loaded from a verified checkpoint
    # Another runtime for the image encoder (persam.runtimes), set by load_sam; None: this module's own.
    encoder_runtime = None
    # The same for the prompt encoder + mask decoder (persam.decoders); None: this module's own.
    decoder_runtime = None

    def __init__(
        self,
        image_encoder: nn.Module,
        prompt_encoder: PromptEncoder,
        mask_decoder: MaskDecoder,
        pixel_mean: tuple[float, float, float] = PIXEL_MEAN,
        pixel_std: tuple[float, float, float] = PIXEL_STD,
    ) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.prompt_encoder = prompt_encoder
        self.mask_decoder = mask_decoder
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), persistent=False)

    @property
    def img_size(self) -> int:
        """Side of the square input the encoder expects (1024 for the released models)."""
        return self.image_encoder.img_size

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device
