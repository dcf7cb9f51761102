"""Export a SAM model for other runtimes: the image encoder and the prompt-encoder + mask-decoder graph, as
ONNX and OpenVINO IR, with a JSON file that says how to feed them.

The decoder graph follows SAM's own ONNX export (points and box corners as one labelled point list, a
mask prompt switched by a flag) and adds PerSAM's two guidance inputs, so a deployment can run PerSAM
without PyTorch: ``attn_sim`` (target-guided attention, switched by ``has_attn_sim``) and
``target_embedding`` (target-semantic prompting; zeros = none). It returns all four mask tokens' low-res
logits (the single-mask token first, then SAM's three multi-scale masks) and their predicted IoUs;
choosing among them and upscaling are left to the caller, as the JSON describes.

    paths = export_model(sam, "out/", formats=("onnx", "openvino"))
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from .errors import PersamError
from .runtimes.cache import ONNX_OPSET, export_onnx, require
from .runtimes.decoder_graph import export_decoder

FORMATS = ("onnx", "openvino")
ENCODER_NAME = "image_encoder"
DECODER_NAME = "mask_decoder"


def describe(sam: nn.Module) -> dict:
    """The JSON description of the exported graphs: inputs, outputs and the processing around them."""
    size = int(sam.img_size)
    c = sam.prompt_encoder.embed_dim
    h, w = sam.prompt_encoder.image_embedding_size
    return {
        "model": getattr(sam, "model_name", ""),
        "weights_sha256": getattr(sam, "weights_sha256", None),
        "torch": torch.__version__,
        "onnx_opset": ONNX_OPSET,
        "image_encoder": {
            "inputs": {"image": {"shape": [1, 3, size, size], "dtype": "float32"}},
            "outputs": {"image_embeddings": {"shape": [1, c, h, w], "dtype": "float32"}},
            "preprocessing": [
                "RGB uint8 image (H, W, 3)",
                f"resize (bilinear, antialiased) so the longest side is {size}: scale = {size} / max(H, W), "
                "new size = (int(H * scale + 0.5), int(W * scale + 0.5))",
                "subtract pixel_mean and divide by pixel_std, per channel (RGB order, 0-255 scale)",
                f"channels first, pad with zeros at the bottom and right to {size}x{size}, add a batch axis",
            ],
            "pixel_mean": [float(v) for v in sam.pixel_mean.flatten()],
            "pixel_std": [float(v) for v in sam.pixel_std.flatten()],
        },
        "mask_decoder": {
            "inputs": {
                "image_embeddings": {"shape": [1, c, h, w], "dtype": "float32", "doc": "the encoder's output"},
                "point_coords": {"shape": [1, "N", 2], "dtype": "float32",
                                 "doc": "(x, y) in the resized image's pixels: original coordinates * scale"},
                "point_labels": {"shape": [1, "N"], "dtype": "float32",
                                 "doc": "1 object, 0 background, 2 / 3 box top-left / bottom-right, -1 padding; "
                                        "without a box append one padding point (0, 0) with label -1"},
                "mask_input": {"shape": [1, 1, 4 * h, 4 * w], "dtype": "float32",
                               "doc": "low-res logits of an earlier decoding (mask prompt)"},
                "has_mask_input": {"shape": [1], "dtype": "float32", "doc": "1 to use mask_input, else 0"},
                "attn_sim": {"shape": [1, 1, 1, h * w], "dtype": "float32",
                             "doc": "PerSAM target-guided attention: sigmoid of the normalised location "
                                    "confidence on the encoder grid, row-major"},
                "has_attn_sim": {"shape": [1], "dtype": "float32", "doc": "1 to apply attn_sim, else 0"},
                "target_embedding": {"shape": [1, 1, c], "dtype": "float32",
                                     "doc": "PerSAM target-semantic prompt; zeros for none"},
            },
            "outputs": {
                "low_res_masks": {"shape": [1, 4, 4 * h, 4 * w], "dtype": "float32",
                                  "doc": "mask logits: index 0 the single-mask token, 1-3 SAM's multi-scale masks"},
                "iou_predictions": {"shape": [1, 4], "dtype": "float32"},
            },
            "postprocessing": [
                f"upsample low_res_masks bilinearly to {size}x{size}",
                "crop to the resized image (top-left new-size rows and columns)",
                "upsample bilinearly to the original (H, W); the object is where the logit > 0",
            ],
        },
    }


def export_model(
    sam: nn.Module,
    out_dir: str | os.PathLike,
    formats: Sequence[str] = FORMATS,
) -> list[Path]:
    """Write ``sam``'s image encoder and decoder graph to ``out_dir`` in ``formats`` (onnx, openvino), plus
    ``persam_model.json``; returns the written paths. Each file appears complete or not at all.

    Raises :class:`PersamError` for an unknown format or a missing optional package (one line, with the
    ``pip install persam[...]`` that adds it).
    """
    formats = list(dict.fromkeys(formats))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise PersamError(f"unknown export format {', '.join(unknown) or '(none)'}; choose from {', '.join(FORMATS)}")
    require("onnx", "onnx", "exporting to ONNX")
    ov = require("openvino", "openvino", "exporting to OpenVINO IR") if "openvino" in formats else None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    encoder = sam.image_encoder if sam.device.type == "cpu" else copy.deepcopy(sam.image_encoder).cpu()
    with tempfile.TemporaryDirectory(prefix=".persam-export-", dir=out) as tmp_name:
        tmp = Path(tmp_name)
        size = sam.img_size
        export_onnx(encoder, (torch.zeros(1, 3, size, size),), tmp / f"{ENCODER_NAME}.onnx",
                    ["image"], ["image_embeddings"])
        export_decoder(sam, tmp / f"{DECODER_NAME}.onnx")
        for name in (ENCODER_NAME, DECODER_NAME):
            if ov is not None:
                ov.save_model(ov.convert_model(str(tmp / f"{name}.onnx")), str(tmp / f"{name}.xml"),
                              compress_to_fp16=False)
            if "onnx" not in formats:
                (tmp / f"{name}.onnx").unlink()
        (tmp / "persam_model.json").write_text(json.dumps(describe(sam), indent=1) + "\n")
        for path in sorted(tmp.iterdir()):  # same-folder renames: readers never see half a file
            os.replace(path, out / path.name)
            written.append(out / path.name)
    return written
