"""Model registry: backbone name -> architecture, and building a SAM with verified weights.

``vit_b``, ``vit_l``, ``vit_h`` are the original SAM image encoders; ``vit_t`` is MobileSAM's TinyViT.
Each also has a *tiny* variant with the same structure and very small widths, used with random weights
by the tests to exercise every code path without downloading anything.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from ..errors import CheckpointError
from .config import MODEL_CONFIGS, TINY_CONFIGS, SamConfig  # noqa: F401 (re-exported)
from .image_encoder import ImageEncoderViT
from .mask_decoder import MaskDecoder
from .prompt_encoder import PromptEncoder
from .sam import Sam
from .tiny_vit import TinyViT
from .transformer import TwoWayTransformer


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
    sam = Sam(encoder, prompt_encoder, decoder, pixel_mean=config.pixel_mean, pixel_std=config.pixel_std)
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
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # tensors of other shapes: another architecture
        detail = next((ln.strip() for ln in str(exc).splitlines() if "size mismatch" in ln), "shapes differ")
        raise CheckpointError(f"{source}: weights do not fit this model ({detail[:200]})") from None
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
    fuse = getattr(model.image_encoder, "fuse_batchnorm", None)  # encoders with BatchNorm offer it
    if fuse is not None:
        fuse()
    return model
