"""Architecture tests on tiny random models, plus official key names on the full-size configs (meta device)."""

from __future__ import annotations

import pytest
import torch

from persam.modeling import MODEL_CONFIGS, TINY_CONFIGS, build_sam_from_config, prepare_for_inference
from persam.modeling.tiny_vit import TinyViT

from ..conftest import tiny_sam


@pytest.mark.parametrize("name", sorted(TINY_CONFIGS))
def test_encoder_output_shape_and_batching(name):
    sam = tiny_sam(name)
    cfg = TINY_CONFIGS[name]
    x = torch.randn(2, 3, cfg.img_size, cfg.img_size)
    with torch.no_grad():
        both = sam.image_encoder(x)
        one = sam.image_encoder(x[1:])
    grid = cfg.img_size // 16
    assert both.shape == (2, cfg.prompt_embed_dim, grid, grid)
    assert torch.allclose(both[1:], one, atol=1e-4)
    assert torch.isfinite(both).all()


@pytest.mark.parametrize("name", sorted(TINY_CONFIGS))
def test_weights_that_do_not_fit_are_refused_naming_the_keys(name):
    from persam.errors import CheckpointError
    from persam.modeling import load_weights

    state = build_sam_from_config(TINY_CONFIGS[name]).state_dict()
    other = "vit_b" if name != "vit_b" else "vit_t"
    with pytest.raises(CheckpointError, match="weights do not fit this model") as exc:
        load_weights(build_sam_from_config(TINY_CONFIGS[other]), state, "w.pt")
    assert str(exc.value).startswith("w.pt: ")
    renamed = {("module." + k if k.startswith("mask_decoder.iou") else k): v for k, v in state.items()}
    with pytest.raises(CheckpointError, match=r"unexpected keys \(e.g. module.mask_decoder.iou"):
        load_weights(build_sam_from_config(TINY_CONFIGS[name]), renamed, "w.pt")


# Shapes of official checkpoint tensors (from the released state dicts).
OFFICIAL_SHAPES = {
    "vit_t": {
        "image_encoder.patch_embed.seq.0.c.weight": (32, 3, 3, 3),
        "image_encoder.layers.1.blocks.0.attn.attention_biases": (4, 49),
        "image_encoder.layers.2.blocks.5.attn.attention_biases": (5, 196),
        "image_encoder.layers.2.downsample.conv2.c.weight": (320, 1, 3, 3),
        "image_encoder.head.weight": (1000, 320),
        "image_encoder.neck.0.weight": (256, 320, 1, 1),
        "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix": (2, 128),
        "mask_decoder.transformer.layers.1.cross_attn_token_to_image.q_proj.weight": (128, 256),
        "mask_decoder.output_hypernetworks_mlps.3.layers.2.weight": (32, 256),
    },
    "vit_b": {
        "image_encoder.pos_embed": (1, 64, 64, 768),
        "image_encoder.blocks.2.attn.rel_pos_h": (127, 64),
        "image_encoder.blocks.0.attn.rel_pos_w": (27, 64),
        "image_encoder.blocks.11.mlp.lin1.weight": (3072, 768),
    },
    "vit_l": {
        "image_encoder.blocks.5.attn.rel_pos_h": (127, 64),
        "image_encoder.blocks.23.attn.qkv.weight": (3072, 1024),
        "image_encoder.blocks.22.attn.rel_pos_w": (27, 64),
    },
    "vit_h": {
        "image_encoder.blocks.31.attn.rel_pos_h": (127, 80),
        "image_encoder.blocks.30.attn.rel_pos_h": (27, 80),
        "image_encoder.neck.0.weight": (256, 1280, 1, 1),
    },
}
OFFICIAL_KEY_COUNTS = {"vit_t": 439}


@pytest.mark.parametrize("name", sorted(MODEL_CONFIGS))
def test_full_size_models_use_official_names_and_shapes(name):
    with torch.device("meta"):
        sam = build_sam_from_config(MODEL_CONFIGS[name])
    state = sam.state_dict()
    for key, shape in OFFICIAL_SHAPES[name].items():
        assert tuple(state[key].shape) == shape, key
    assert "pixel_mean" not in state  # not part of the checkpoints
    if name in OFFICIAL_KEY_COUNTS:
        assert len(state) == OFFICIAL_KEY_COUNTS[name]


def test_attention_biases_loaded_after_eval_are_used():
    """The reference TinyViT caches its biases on .eval(); weights loaded afterwards must still count."""
    cfg = TINY_CONFIGS["vit_t"]
    torch.manual_seed(3)
    source = build_sam_from_config(cfg)
    with torch.no_grad():
        for name, p in source.named_parameters():
            if "attention_biases" in name:
                p.normal_()
    source.eval()
    late = build_sam_from_config(cfg).eval()  # eval *before* loading, as the paper's code does
    late.load_state_dict(source.state_dict())
    no_bias = build_sam_from_config(cfg).eval()
    no_bias.load_state_dict(
        {k: torch.zeros_like(v) if "attention_biases" in k else v for k, v in source.state_dict().items()}
    )
    x = torch.randn(1, 3, cfg.img_size, cfg.img_size)
    with torch.no_grad():
        expected = source.image_encoder(x)
        assert torch.allclose(late.image_encoder(x), expected, atol=1e-5)
        assert not torch.allclose(no_bias.image_encoder(x), expected, atol=1e-3)


def test_batchnorm_fusion_keeps_outputs():
    cfg = TINY_CONFIGS["vit_t"]
    torch.manual_seed(0)
    sam = build_sam_from_config(cfg)
    with torch.no_grad():
        for m in sam.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    sam.eval()
    x = torch.randn(1, 3, cfg.img_size, cfg.img_size)
    with torch.no_grad():
        before = sam.image_encoder(x)
        prepare_for_inference(sam)
        after = sam.image_encoder(x)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in sam.modules())
    assert isinstance(sam.image_encoder, TinyViT)
    assert torch.allclose(before, after, atol=1e-4)


@pytest.mark.parametrize("name", ["vit_t", "vit_b"])
def test_stem_then_body_is_the_encoder(name):
    """A runtime may run the stem and the body apart (mixed precision): together they are the encoder, exactly."""
    sam = tiny_sam(name)
    x = torch.randn(1, 3, sam.img_size, sam.img_size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        whole = sam.image_encoder(x)
        stem = sam.image_encoder.forward_stem(x)
        split = sam.image_encoder.forward_body(stem)
    assert stem.shape != whole.shape and torch.equal(split, whole)
