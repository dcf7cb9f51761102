"""SAM and MobileSAM in plain PyTorch: image encoders, prompt encoder, mask decoder."""

from .build import (
    MODEL_CONFIGS,
    TINY_CONFIGS,
    SamConfig,
    build_sam_from_config,
    load_state_dict_file,
    load_weights,
    model_names,
    prepare_for_inference,
)
from .image_encoder import ImageEncoderViT
from .mask_decoder import MaskDecoder
from .prompt_encoder import PromptEncoder
from .sam import Sam
from .tiny_vit import TinyViT
from .transformer import TwoWayTransformer

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
