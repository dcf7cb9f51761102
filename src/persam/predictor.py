"""Encode an image once, then decode masks from prompts: the SAM predictor, with PerSAM's hooks.

Coordinates given to :meth:`SamPredictor.predict` are pixels of the original image (x, y); masks come back
as low-resolution logits on the padded input square, and :meth:`SamPredictor.upscale` maps them to the
original image.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from .decoders import MaskDecoderRuntime, TorchDecoder
from .encoders import DEFAULT_FEATURES, FeatureSource, ImageEncoder, TorchEncoder
from .modeling import Sam
from .transforms import apply_coords, grid_to_image, resize_image, resized_shape


@dataclass
class ImageEmbedding:
    """An encoded image: what every later decoding of that image needs."""

    features: torch.Tensor  # (1, C, h, w) SAM's embedding on the padded input square (what the decoder reads)
    original_size: tuple[int, int]  # (H, W)
    input_size: tuple[int, int]  # (h, w) of the resized image inside the square
    seconds: float = 0.0  # encoder wall time
    prior_features: torch.Tensor | None = None  # (1, C', h, w) for the location prior and score; None: features

    @property
    def match_features(self) -> torch.Tensor:
        """The features the location prior and the part-similarity score are computed on."""
        return self.features if self.prior_features is None else self.prior_features


@dataclass
class Decoded:
    """Decoder output for one prompt set."""

    logits: torch.Tensor  # (K, 4h, 4w) low-resolution mask logits (on the CPU)
    iou: torch.Tensor  # (K,) predicted IoU of each mask (on the CPU)


class SamPredictor:
    """Thin, stateless wrapper around :class:`Sam` for one image at a time.

    The image features come from ``encoder`` and the masks from ``decoder`` (default: the runtimes the model
    was loaded with, else its own PyTorch modules; see :mod:`persam.encoders`, :mod:`persam.decoders`); the
    location prior and score use ``feature_source`` (default: SAM's features).
    """

    def __init__(self, model: Sam, encoder: ImageEncoder | None = None,
                 feature_source: FeatureSource | None = None, decoder: MaskDecoderRuntime | None = None) -> None:
        self.model = model
        self.encoder = encoder or model.encoder_runtime or TorchEncoder(model.image_encoder)
        self.decoder = decoder or model.decoder_runtime or TorchDecoder(model)
        self.feature_source = feature_source or DEFAULT_FEATURES

    @property
    def device(self) -> torch.device:
        return self.model.device

    def preprocess(self, image: np.ndarray) -> tuple[torch.Tensor, tuple[int, int]]:
        """HxWx3 uint8 RGB -> normalised, padded (1, 3, S, S) tensor and the resized (h, w)."""
        s = self.model.img_size
        size = resized_shape(image.shape[:2], s)
        resized = torch.from_numpy(np.ascontiguousarray(resize_image(image, size))).to(self.device)
        # Normalised in place inside the zero (= padding) square: one pass over the pixels, no copies.
        x = torch.zeros(1, 3, s, s, device=self.device)
        inside = x[0, :, : size[0], : size[1]]
        inside.copy_(resized.permute(2, 0, 1))
        inside.sub_(self.model.pixel_mean).div_(self.model.pixel_std)
        return x, size

    @torch.inference_mode()
    def encode(self, image: np.ndarray) -> ImageEmbedding:
        """Run the image encoder once; reuse the result for every prompt on this image."""
        start = time.perf_counter()
        x, input_size = self.preprocess(image)
        features = self.encoder(x)
        source = self.feature_source
        prior = None if source is DEFAULT_FEATURES else source.features(x, features)
        return ImageEmbedding(features, image.shape[:2], input_size, time.perf_counter() - start, prior)

    @torch.inference_mode()
    def predict(
        self,
        emb: ImageEmbedding,
        point_coords: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        box: np.ndarray | None = None,
        mask_input: torch.Tensor | None = None,
        multimask_output: bool = True,
        attn_sim: torch.Tensor | None = None,
        target_embedding: torch.Tensor | None = None,
        all_tokens: bool = False,
    ) -> Decoded:
        """Decode masks for one prompt set.

        ``point_coords`` (N, 2) and ``box`` (4,) are in original-image pixels; ``mask_input`` is (1, 4h, 4w)
        low-res logits from an earlier call. ``all_tokens`` returns all four mask tokens (single-mask
        token first) instead of SAM's selection by ``multimask_output``.
        """
        dev = self.device
        points = None
        if point_coords is not None:
            coords = apply_coords(point_coords, emb.original_size, emb.input_size)
            labels = np.asarray(point_labels, dtype=np.int64)
            points = (torch.from_numpy(coords)[None].to(dev), torch.from_numpy(labels)[None].to(dev))
        boxes = None
        if box is not None:
            corners = apply_coords(np.asarray(box, dtype=np.float32).reshape(2, 2), emb.original_size, emb.input_size)
            boxes = torch.from_numpy(corners.reshape(1, 4)).to(dev)
        masks = mask_input[None].to(dev) if mask_input is not None else None
        attn_sim = attn_sim.to(dev) if attn_sim is not None else None
        target_embedding = target_embedding.to(dev) if target_embedding is not None else None
        logits, iou = self.decoder(emb.features, points, boxes, masks, attn_sim, target_embedding)
        if not all_tokens:  # SAM's choice: the three multi-scale masks, or the single-mask token
            tokens = slice(1, None) if multimask_output else slice(0, 1)
            logits, iou = logits[:, tokens], iou[:, tokens]
        # on the CPU, whatever the model's device: everything after the decoder works on masks there
        return Decoded(logits[0].cpu(), iou[0].cpu())

    def upscale(self, emb: ImageEmbedding, logits: torch.Tensor) -> torch.Tensor:
        """(K, 4h, 4w) low-res logits -> (K, H, W) logits at the original image size."""
        with torch.inference_mode():
            return grid_to_image(logits[None], self.model.img_size, emb.input_size, emb.original_size)[0]
