"""Image-encoder runtimes: the same SAM image encoder run by PyTorch, ONNX Runtime or OpenVINO.

The image encoder is most of persam's time per image, and a graph runtime runs it faster on a CPU than eager
PyTorch. :func:`make_encoder` returns an :class:`~persam.encoders.ImageEncoder` for a loaded model; give it
to :class:`~persam.predictor.SamPredictor` (``SamPredictor(sam, encoder=...)``). The prompt encoder and mask
decoder stay in PyTorch: they are a small part of the time and PerSAM changes them (guided attention,
semantic prompt, gradients for PerSAM-F's fit).

The encoder is exported to ONNX on first use and cached (see :mod:`.cache`); OpenVINO also keeps its
compiled model there, so later runs start in well under a second. ONNX Runtime and OpenVINO are optional
packages: without them :func:`make_encoder` raises a :class:`~persam.errors.PersamError` naming the extra to
install, and :func:`available_runtimes` says what can run here.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import torch

from ..encoders import ImageEncoder, TorchEncoder
from ..errors import PersamError
from .cache import encoder_onnx, remove_entry, require

RUNTIMES = ("torch", "onnxruntime", "openvino")
PRECISIONS = ("f32", "bf16")
_EXTRAS = {"onnxruntime": "onnx", "openvino": "openvino"}
_PACKAGES = {"torch": (), "onnxruntime": ("onnxruntime", "onnx"), "openvino": ("openvino", "onnx")}

__all__ = ["PRECISIONS", "RUNTIMES", "OnnxRuntimeEncoder", "OpenVinoEncoder", "available_runtimes",
           "make_encoder", "preferred_runtime"]


def available_runtimes() -> list[str]:
    """The runtimes whose packages are installed here, in :data:`RUNTIMES` order (``torch`` always)."""
    return [r for r in RUNTIMES if all(importlib.util.find_spec(p) is not None for p in _PACKAGES[r])]


PREFERENCE = ("openvino", "onnxruntime", "torch")  # fastest first, all within the accuracy bounds at f32


def preferred_runtime() -> str:
    """The fastest runtime installed here (for a default of "auto"): openvino, else onnxruntime, else torch."""
    available = available_runtimes()
    return next(r for r in PREFERENCE if r in available)


def _threads(threads: int | None) -> int:
    return int(threads) if threads else torch.get_num_threads()


def _to_numpy(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())


class OnnxRuntimeEncoder:
    """The exported encoder run by ONNX Runtime's CPU provider."""

    runtime = "onnxruntime"

    def __init__(self, path: Path, device: torch.device, threads: int) -> None:
        ort = require("onnxruntime", "onnx", "the onnxruntime runtime")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Spinning threads would keep the cores busy after each call, while PyTorch runs the decoder on them.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.device = device
        self.precision = "f32"
        self.path = path

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {self.input_name: _to_numpy(x)})[0]
        return torch.from_numpy(out).to(self.device)


class OpenVinoEncoder:
    """The exported encoder compiled by OpenVINO for the CPU (``precision`` bf16: its bf16 inference hint)."""

    runtime = "openvino"

    def __init__(self, path: Path, device: torch.device, threads: int, precision: str) -> None:
        ov = require("openvino", "openvino", "the openvino runtime")
        core = ov.Core()
        # One compiled-model cache per precision: OpenVINO 2026.4 gave a bf16 compile the f32 blob's cache
        # name and then crashed running it.
        compiled_cache = path.parent / f"openvino-{ov.get_version().split('-')[0]}-{precision}"
        core.set_property({"CACHE_DIR": str(compiled_cache)})
        config = {
            "INFERENCE_NUM_THREADS": threads,
            "INFERENCE_PRECISION_HINT": precision,
            "PERFORMANCE_HINT": "LATENCY",
        }
        self.compiled = core.compile_model(str(path), "CPU", config)
        self.request = self.compiled.create_infer_request()
        # What OpenVINO actually runs: a bf16 hint falls back to f32 on CPUs without bf16 support.
        hint = self.compiled.get_property("INFERENCE_PRECISION_HINT")
        self.precision = hint.to_string() if hasattr(hint, "to_string") else str(hint)
        self.device = device
        self.path = path

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.request.infer({0: _to_numpy(x)}, share_inputs=True)
        out = np.array(self.request.get_output_tensor(0).data, dtype=np.float32, copy=True)
        return torch.from_numpy(out).to(self.device)


def make_encoder(
    sam,
    runtime: str = "torch",
    precision: str = "f32",
    cache_dir: str | os.PathLike | None = None,
    threads: int | None = None,
) -> ImageEncoder:
    """An image encoder for ``sam`` run by ``runtime`` (torch, onnxruntime, openvino) at ``precision``.

    ``precision`` bf16 is for openvino only (its bf16 inference hint). ``cache_dir`` holds the exported
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

    def build(path: Path) -> ImageEncoder:
        if runtime == "onnxruntime":
            return OnnxRuntimeEncoder(path, sam.device, n)
        return OpenVinoEncoder(path, sam.device, n, precision)

    path = encoder_onnx(sam, cache_dir)
    try:
        return build(path)
    except PersamError:
        raise
    except Exception:  # the runtime cannot read the cached file: damaged beyond its size, rebuild once
        remove_entry(path.parent)
        return build(encoder_onnx(sam, cache_dir))
