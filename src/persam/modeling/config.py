"""Architectures of the SAM variants, as plain data (no PyTorch), so that a registry and a command line can
read them without loading the model code."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PIXEL_MEAN = (123.675, 116.28, 103.53)  # SAM's ImageNet statistics, on 0..255 RGB
PIXEL_STD = (58.395, 57.12, 57.375)


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
    pixel_mean: tuple[float, float, float] = PIXEL_MEAN
    pixel_std: tuple[float, float, float] = PIXEL_STD


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


