"""The two graph runtimes' setup: an ONNX Runtime session and an OpenVINO compiled model, on the CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .cache import require


def to_numpy(x: torch.Tensor) -> np.ndarray:
    """A float32, C-contiguous NumPy copy (or view) of a tensor, as the runtimes take it."""
    return np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())


def ort_session(path: Path, threads: int):
    """An ONNX Runtime CPU session of ``path`` on ``threads`` threads that do not spin between calls."""
    ort = require("onnxruntime", "onnx", "the onnxruntime runtime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Spinning threads would keep the cores busy after each call, while PyTorch runs other work on them.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def openvino_compile(path: Path, threads: int, precision: str, shapes: dict[str, list[int]] | None = None):
    """``path`` compiled by OpenVINO for the CPU at ``precision`` (its inference hint), for latency;
    ``shapes`` fixes the shapes of named inputs first (a static graph runs a little faster)."""
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
    if shapes is None:
        return core.compile_model(str(path), "CPU", config)
    model = core.read_model(str(path))
    model.reshape(shapes)
    return core.compile_model(model, "CPU", config)
