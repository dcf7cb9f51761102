"""Runtimes: the same SAM image encoder and mask decoder run by PyTorch, ONNX Runtime or OpenVINO.

The image encoder is most of persam's time per image, and a graph runtime runs it faster on a CPU than eager
PyTorch. :func:`make_encoder` returns an :class:`~persam.encoders.ImageEncoder` for a loaded model; give it
to :class:`~persam.predictor.SamPredictor` (``SamPredictor(sam, encoder=...)``). PerSAM decodes each image
two to four times, so the prompt encoder + mask decoder, with PerSAM's guidance as graph inputs
(:mod:`.decoder_graph`), has runtimes too: :func:`make_decoder` (``SamPredictor(sam, decoder=...)``). The
decoder always runs in f32 (its masks move visibly in bf16).

Each part is exported to ONNX on first use and cached (see :mod:`.cache`); OpenVINO also keeps its
compiled models there, so later runs start in well under a second. ONNX Runtime and OpenVINO are optional
packages: without them :func:`make_encoder` raises a :class:`~persam.errors.PersamError` naming the extra to
install, and :func:`available_runtimes` says what can run here.
"""

from __future__ import annotations

import importlib.util
import os

import torch

from ..decoders import MaskDecoderRuntime, TorchDecoder
from ..encoders import ImageEncoder, TorchEncoder
from ..errors import PersamError
from .cache import cached_onnx, decoder_onnx, remove_entry, require
from .decoders import GraphDecoder
from .encoders import OnnxRuntimeEncoder, OpenVinoEncoder

RUNTIMES = ("torch", "onnxruntime", "openvino")
#: f32; bf16 (OpenVINO's bf16 inference hint); mixed (OpenVINO: the encoder's stem in f32, the rest in bf16)
PRECISIONS = ("f32", "bf16", "mixed")
_EXTRAS = {"onnxruntime": "onnx", "openvino": "openvino"}
_PACKAGES = {"torch": (), "onnxruntime": ("onnxruntime", "onnx"), "openvino": ("openvino", "onnx")}

__all__ = ["PRECISIONS", "RUNTIMES", "GraphDecoder", "auto_precision", "OnnxRuntimeEncoder", "OpenVinoEncoder",
           "available_runtimes", "make_decoder", "make_encoder", "preferred_runtime"]


def available_runtimes() -> list[str]:
    """The runtimes whose packages are installed here, in :data:`RUNTIMES` order (``torch`` always)."""
    return [r for r in RUNTIMES if all(importlib.util.find_spec(p) is not None for p in _PACKAGES[r])]


PREFERENCE = ("openvino", "onnxruntime", "torch")  # fastest first, all within the accuracy bounds at f32


def preferred_runtime() -> str:
    """The fastest runtime installed here (for a default of "auto"): openvino, else onnxruntime, else torch."""
    available = available_runtimes()
    return next(r for r in PREFERENCE if r in available)


def auto_precision(runtime: str) -> str:
    """The precision "auto" stands for: mixed for OpenVINO (it meets the accuracy rule of the README's runtime
    section on every benchmark there), f32 for the other runtimes."""
    return "mixed" if runtime == "openvino" else "f32"


def _threads(threads: int | None) -> int:
    return int(threads) if threads else torch.get_num_threads()


def make_decoder(
    sam,
    runtime: str = "torch",
    cache_dir: str | os.PathLike | None = None,
    threads: int | None = None,
) -> MaskDecoderRuntime:
    """A prompt encoder + mask decoder for ``sam`` run by ``runtime`` (torch, onnxruntime, openvino), in f32.

    ``cache_dir`` and ``threads`` as for :func:`make_encoder`; the same one-line errors.
    """
    if runtime not in RUNTIMES:
        raise PersamError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    if runtime == "torch":
        return TorchDecoder(sam)
    for package in _PACKAGES[runtime]:
        require(package, _EXTRAS[runtime], f"the {runtime} runtime")
    n = _threads(threads)
    path = decoder_onnx(sam, cache_dir)
    try:
        return GraphDecoder(runtime, path, sam, n)
    except PersamError:
        raise
    except Exception:  # the runtime cannot read the cached file: rebuild once
        remove_entry(path.parent)
        return GraphDecoder(runtime, decoder_onnx(sam, cache_dir), sam, n)


def make_encoder(
    sam,
    runtime: str = "torch",
    precision: str = "f32",
    cache_dir: str | os.PathLike | None = None,
    threads: int | None = None,
) -> ImageEncoder:
    """An image encoder for ``sam`` run by ``runtime`` (torch, onnxruntime, openvino) at ``precision``.

    ``precision`` bf16 and mixed are for openvino only (its bf16 inference hint; mixed keeps the encoder's
    stem, which works on the pixels at 1/4 resolution, in f32). ``cache_dir`` holds the exported
    model (default: ``persam.checkpoints.cache_dir()/runtimes``); ``threads`` defaults to torch's thread
    count. Raises :class:`PersamError` with a one-line message for an unknown runtime or precision, or a
    runtime whose package is not installed (the message says which ``pip install persam[...]`` adds it).
    """
    if runtime not in RUNTIMES:
        raise PersamError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    if precision not in PRECISIONS:
        raise PersamError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision != "f32" and runtime != "openvino":
        raise PersamError(f"precision {precision} is only available with the openvino runtime")
    if runtime == "torch":
        return TorchEncoder(sam.image_encoder)
    for package in _PACKAGES[runtime]:
        require(package, _EXTRAS[runtime], f"the {runtime} runtime")
    n = _threads(threads)
    stages = [("encoder_stem", "f32"), ("encoder_body", "bf16")] if precision == "mixed" else [("encoder", precision)]

    def build() -> ImageEncoder:
        paths = [(cached_onnx(sam, part, cache_dir), p) for part, p in stages]
        if runtime == "onnxruntime":
            return OnnxRuntimeEncoder(paths[0][0], sam.device, n)
        return OpenVinoEncoder(paths, sam.device, n)

    try:
        return build()
    except PersamError:
        raise
    except Exception:  # the runtime cannot read a cached file: damaged beyond its size, rebuild once
        for part, _ in stages:
            remove_entry(cached_onnx(sam, part, cache_dir).parent)
        return build()
