"""persam.export: the exported encoder and decoder graph, run by ONNX Runtime (and OpenVINO), give persam's
logits; the JSON describes them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from persam import SamPredictor
from persam.errors import PersamError
from persam.export import export_model

from .conftest import PERSEG, require_data, tiny_sam
from .test_runtimes import require_runtime


def _session(path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _decoder_inputs(sam, emb, coords, labels, box=None, mask=None, attn_sim=None, target=None) -> dict:
    """What the JSON tells a deployment to feed the decoder, from original-image prompts."""
    from persam.transforms import apply_coords

    h, w = sam.prompt_encoder.image_embedding_size
    c = sam.prompt_encoder.embed_dim
    pts = apply_coords(np.asarray(coords, np.float32), emb.original_size, emb.input_size)
    lab = np.asarray(labels, np.float32)
    if box is not None:
        corners = apply_coords(np.asarray(box, np.float32).reshape(2, 2), emb.original_size, emb.input_size)
        pts, lab = np.concatenate([pts, corners]), np.concatenate([lab, [2.0, 3.0]])
    else:
        pts, lab = np.concatenate([pts, [[0.0, 0.0]]]), np.concatenate([lab, [-1.0]])
    return {
        "image_embeddings": emb.features.numpy(),
        "point_coords": pts[None].astype(np.float32),
        "point_labels": lab[None].astype(np.float32),
        "mask_input": (mask[None].numpy() if mask is not None else np.zeros((1, 1, 4 * h, 4 * w), np.float32)),
        "has_mask_input": np.array([1.0 if mask is not None else 0.0], np.float32),
        "attn_sim": attn_sim.numpy() if attn_sim is not None else np.zeros((1, 1, 1, h * w), np.float32),
        "has_attn_sim": np.array([1.0 if attn_sim is not None else 0.0], np.float32),
        "target_embedding": target.numpy() if target is not None else np.zeros((1, 1, c), np.float32),
    }


def _cases(sam, emb, gen):
    h, w = sam.prompt_encoder.image_embedding_size
    c = sam.prompt_encoder.embed_dim
    H, W = emb.original_size
    point = ([[W * 0.5, H * 0.4]], [1])
    two = ([[W * 0.5, H * 0.4], [W * 0.1, H * 0.9]], [1, 0])
    box = np.array([W * 0.2, H * 0.2, W * 0.8, H * 0.7])
    mask = torch.randn(1, 4 * h, 4 * w, generator=gen) * 4
    sim = torch.sigmoid(torch.randn(1, 1, 1, h * w, generator=gen))
    target = torch.randn(1, 1, c, generator=gen)
    return [
        dict(coords=point[0], labels=point[1]),
        dict(coords=two[0], labels=two[1], box=box),
        dict(coords=point[0], labels=point[1], box=box, mask=mask),
        dict(coords=two[0], labels=two[1], attn_sim=sim, target=target),
        dict(coords=point[0], labels=point[1], mask=mask, box=box, attn_sim=sim, target=target),
    ]


def _check_round_trip(sam, image, out_dir, atol: float) -> None:
    paths = export_model(sam, out_dir, formats=("onnx",))
    names = {p.name for p in paths}
    assert {"image_encoder.onnx", "mask_decoder.onnx", "persam_model.json"} <= names
    meta = json.loads((out_dir / "persam_model.json").read_text())
    assert meta["image_encoder"]["inputs"]["image"]["shape"] == [1, 3, sam.img_size, sam.img_size]

    predictor = SamPredictor(sam)
    emb = predictor.encode(image)
    x, _ = predictor.preprocess(image)
    features = _session(out_dir / "image_encoder.onnx").run(None, {"image": x.numpy()})[0]
    np.testing.assert_allclose(features, emb.features.numpy(), atol=atol * 1e-1, rtol=1e-3)

    decoder = _session(out_dir / "mask_decoder.onnx")
    gen = torch.Generator().manual_seed(0)
    for case in _cases(sam, emb, gen):
        decoded = predictor.predict(emb, np.array(case["coords"]), np.array(case["labels"]), case.get("box"),
                                    case.get("mask"), attn_sim=case.get("attn_sim"),
                                    target_embedding=case.get("target"), all_tokens=True)
        logits, iou = decoder.run(None, _decoder_inputs(sam, emb, **case))
        np.testing.assert_allclose(logits[0], decoded.logits.numpy(), atol=atol, rtol=1e-3)
        np.testing.assert_allclose(iou[0], decoded.iou.numpy(), atol=atol, rtol=1e-3)
        mine, theirs = logits[0] > 0, decoded.logits.numpy() > 0
        agreement = (mine & theirs).sum() / max((mine | theirs).sum(), 1)
        assert agreement > 0.99


def test_export_round_trip_tiny(tmp_path, rng):
    require_runtime("onnxruntime")
    sam = tiny_sam("vit_t")
    image = rng.integers(0, 255, (180, 240, 3), dtype=np.uint8)
    _check_round_trip(sam, image, tmp_path, atol=1e-3)


@pytest.mark.integration
def test_export_reproduces_mobilesam(mobilesam, tmp_path):
    require_runtime("onnxruntime")
    from persam.io import load_image

    image = load_image(sorted((require_data(PERSEG) / "Images").rglob("*.jpg"))[0])
    _check_round_trip(mobilesam, image, tmp_path, atol=2e-3)


def test_export_openvino_ir(tmp_path):
    require_runtime("openvino")
    import openvino as ov

    sam = tiny_sam("vit_t")
    paths = export_model(sam, tmp_path, formats=("openvino",))
    assert {p.name for p in paths} == {"image_encoder.xml", "image_encoder.bin", "mask_decoder.xml",
                                       "mask_decoder.bin", "persam_model.json"}
    x = torch.randn(1, 3, sam.img_size, sam.img_size)
    # OpenVINO defaults to bf16 on CPUs that have it: ask for f32 to compare exactly.
    compiled = ov.Core().compile_model(str(tmp_path / "image_encoder.xml"), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    with torch.inference_mode():
        np.testing.assert_allclose(compiled(x.numpy())[0], sam.image_encoder(x).numpy(), atol=1e-4, rtol=1e-4)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_export_unknown_format(tmp_path):
    with pytest.raises(PersamError, match="unknown export format"):
        export_model(tiny_sam("vit_t"), tmp_path, formats=("tflite",))
