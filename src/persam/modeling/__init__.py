"""SAM and MobileSAM in plain PyTorch: image encoders, prompt encoder, mask decoder.

Names are imported on first use, so that :mod:`persam.modeling.config` (plain data) can be read without
loading PyTorch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_LAZY = {
    "MODEL_CONFIGS": ".config",
    "TINY_CONFIGS": ".config",
    "SamConfig": ".config",
    "build_sam_from_config": ".build",
    "load_state_dict_file": ".build",
    "load_weights": ".build",
    "model_names": ".build",
    "prepare_for_inference": ".build",
    "ImageEncoderViT": ".image_encoder",
    "MaskDecoder": ".mask_decoder",
    "PromptEncoder": ".prompt_encoder",
    "Sam": ".sam",
    "TinyViT": ".tiny_vit",
    "TwoWayTransformer": ".transformer",
}

if TYPE_CHECKING:
    from .build import build_sam_from_config, load_state_dict_file, load_weights, model_names, prepare_for_inference
    from .config import MODEL_CONFIGS, TINY_CONFIGS, SamConfig
    from .image_encoder import ImageEncoderViT
    from .mask_decoder import MaskDecoder
    from .prompt_encoder import PromptEncoder
    from .sam import Sam
    from .tiny_vit import TinyViT
    from .transformer import TwoWayTransformer


__getattr__ = lazy_exports(__name__, _LAZY, globals())


__all__ = [
    "MODEL_CONFIGS",
    "TINY_CONFIGS",
    "ImageEncoderViT",
    "MaskDecoder",
    "PromptEncoder",
    "Sam",
    "SamConfig",
    "TinyViT",
    "TwoWayTransformer",
    "build_sam_from_config",
    "load_state_dict_file",
    "load_weights",
    "model_names",
    "prepare_for_inference",
]
