"""The image encoder run by ONNX Runtime or OpenVINO (made by :func:`persam.runtimes.make_encoder`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .engines import openvino_compile, ort_session, to_numpy


class OnnxRuntimeEncoder:
    """The exported encoder run by ONNX Runtime's CPU provider."""

    runtime = "onnxruntime"

    def __init__(self, path: Path, device: torch.device, threads: int) -> None:
        self.session = ort_session(path, threads)
        self.input_name = self.session.get_inputs()[0].name
        self.device = device
        self.precision = "f32"
        self.path = path

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {self.input_name: to_numpy(x)})[0]
        return torch.from_numpy(out).to(self.device)


class OpenVinoEncoder:
    """The exported encoder compiled by OpenVINO for the CPU, as one or more stages run in turn.

    ``stages`` are (ONNX path, precision) pairs: one stage for f32 or bf16 (OpenVINO's bf16 inference
    hint), the stem in f32 and the body in bf16 for "mixed".
    """

    runtime = "openvino"

    def __init__(self, stages: list[tuple[Path, str]], device: torch.device, threads: int) -> None:
        self.compiled = [openvino_compile(path, threads, precision) for path, precision in stages]
        self.requests = [c.create_infer_request() for c in self.compiled]
        # What OpenVINO actually runs: a bf16 hint falls back to f32 on CPUs without bf16 support.
        runs = []
        for compiled in self.compiled:
            hint = compiled.get_property("INFERENCE_PRECISION_HINT")
            runs.append(hint.to_string() if hasattr(hint, "to_string") else str(hint))
        self.precision = runs[0] if len(set(runs)) == 1 else "mixed"
        self.device = device
        self.path = stages[-1][0]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        first, *rest = self.requests
        first.infer({0: to_numpy(x)}, share_inputs=True)
        previous = first
        for request in rest:  # the stage's output tensor is the next stage's input, no copy
            request.set_input_tensor(0, previous.get_output_tensor(0))
            request.infer()
            previous = request
        out = np.array(previous.get_output_tensor(0).data, dtype=np.float32, copy=True)
        return torch.from_numpy(out).to(self.device)
