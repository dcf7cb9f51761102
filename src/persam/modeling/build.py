"""Model registry: backbone name -> architecture, and building a SAM with verified weights.

``vit_b``, ``vit_l``, ``vit_h`` are the original SAM image encoders; ``vit_t`` is MobileSAM's TinyViT.
Each also has a *tiny* variant with the same structure and very small widths, used with random weights
by the tests to exercise every code path without downloading anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError
from .image_encoder import ImageEncoderViT
from .mask_decoder import MaskDecoder
from .prompt_encoder import PromptEncoder
from .sam import Sam
from .tiny_vit import TinyViT
from .transformer import TwoWayTransformer


@dataclass(frozen=True)
class SamConfig:
    """Everything needed to instantiate one SAM variant."""

    name: str
    encoder: str  # "vit" or "tiny_vit"
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)
    img_size: int = 1024
    prompt_embed_dim: int = 256
    decoder_mlp_dim: int = 2048
    decoder_heads: int = 8


def _vit(name: str, dim: int, depth: int, heads: int, globals_: tuple[int, ...]) -> SamConfig:
    kwargs = dict(embed_dim=dim, depth=depth, num_heads=heads, global_attn_indexes=globals_)
    return SamConfig(name, "vit", kwargs)


MODEL_CONFIGS: dict[str, SamConfig] = {
    "vit_t": SamConfig("vit_t", "tiny_vit"),
    "vit_b": _vit("vit_b", 768, 12, 12, (2, 5, 8, 11)),
    "vit_l": _vit("vit_l", 1024, 24, 16, (5, 11, 17, 23)),
    "vit_h": _vit("vit_h", 1280, 32, 16, (7, 15, 23, 31)),
}

_TINY_DECODER = dict(img_size=256, prompt_embed_dim=32, decoder_mlp_dim=64, decoder_heads=4)
TINY_CONFIGS: dict[str, SamConfig] = {
    "vit_t": SamConfig(
        "vit_t",
        "tiny_vit",
        dict(embed_dims=(8, 16, 16, 24), depths=(1, 1, 2, 1), num_heads=(1, 2, 2, 3), num_classes=10),
        **_TINY_DECODER,
    ),
    **{
        name: SamConfig(
            name, "vit", dict(embed_dim=24, depth=depth, num_heads=2, global_attn_indexes=g), **_TINY_DECODER
        )
        for name, depth, g in (("vit_b", 2, (1,)), ("vit_l", 3, (2,)), ("vit_h", 4, (1, 3)))
    },
}


def model_names() -> list[str]:
    return list(MODEL_CONFIGS)


def build_sam_from_config(config: SamConfig) -> Sam:
    """A randomly initialised SAM of the given architecture."""
    dim = config.prompt_embed_dim
    if config.encoder == "vit":
        encoder: nn.Module = ImageEncoderViT(img_size=config.img_size, out_chans=dim, **config.encoder_kwargs)
    elif config.encoder == "tiny_vit":
        encoder = TinyViT(img_size=config.img_size, out_chans=dim, **config.encoder_kwargs)
    else:
        raise ValueError(f"unknown encoder type {config.encoder!r}")
    grid = config.img_size // 16
    prompt_encoder = PromptEncoder(dim, (grid, grid), (config.img_size, config.img_size))
    transformer = TwoWayTransformer(2, dim, config.decoder_heads, config.decoder_mlp_dim)
    decoder = MaskDecoder(dim, transformer, iou_head_hidden_dim=dim)
    sam = Sam(encoder, prompt_encoder, decoder)
    sam.model_name = config.name
    return sam


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a checkpoint safely (tensors only, never pickled code)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({reason[:200]})") from exc
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: checkpoint holds a {type(state).__name__}, not a state dict")
    return state


def load_weights(model: Sam, state: dict[str, torch.Tensor], source: str) -> None:
    """Strict load with the official key names; a mismatch names the first offending keys."""
    result = model.load_state_dict(state, strict=False)
    problems = []
    if result.missing_keys:
        problems.append(f"missing {len(result.missing_keys)} keys (e.g. {result.missing_keys[0]})")
    if result.unexpected_keys:
        problems.append(f"{len(result.unexpected_keys)} unexpected keys (e.g. {result.unexpected_keys[0]})")
    if problems:
        raise CheckpointError(f"{source}: weights do not fit this model: " + "; ".join(problems))


def prepare_for_inference(model: Sam) -> Sam:
    """Eval mode, no gradients, BatchNorm folded into convolutions where the encoder has it."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    if isinstance(model.image_encoder, TinyViT):
        model.image_encoder.fuse_batchnorm()
    return model
