"""The prompt encoder + mask decoder graph run by ONNX Runtime or OpenVINO (made by
:func:`persam.runtimes.make_decoder`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..decoders import TorchDecoder
from .decoder_graph import INPUT_NAMES
from .engines import openvino_compile, ort_session, to_numpy


class GraphDecoder:
    """The exported prompt encoder + mask decoder (:mod:`.decoder_graph`) run by ONNX Runtime or OpenVINO.

    Prompts are turned into the graph's inputs as SAM's own export does: box corners are points labelled
    2 and 3; without a box one padding point (label -1) is appended; absent mask, ``attn_sim`` and
    ``target_embedding`` are zeros with their switches off. A call with neither points nor box (no sparse
    prompt at all, which the graph cannot express) is decoded by PyTorch.
    """

    def __init__(self, runtime: str, path: Path, sam, threads: int) -> None:
        self.runtime = runtime
        self.path = path
        self.device = sam.device
        self.fallback = TorchDecoder(sam)
        self.embed_dim = int(sam.prompt_encoder.embed_dim)
        self.grid = tuple(int(v) for v in sam.prompt_encoder.image_embedding_size)
        if runtime == "onnxruntime":
            session = ort_session(path, threads)
            self._run = lambda inputs: session.run(None, inputs)
        else:
            self._requests: dict[int, object] = {}
            self._threads = threads
            self._request(3)  # the usual count (2 clicks + padding); a file OpenVINO cannot read fails here
            self._run = self._run_openvino

    def _request(self, points: int):
        """An OpenVINO request for ``points`` prompt points, compiled for that count on first use."""
        if points not in self._requests:
            shapes = {"point_coords": [1, points, 2], "point_labels": [1, points]}
            self._requests[points] = openvino_compile(self.path, self._threads, "f32", shapes).create_infer_request()
        return self._requests[points]

    def _run_openvino(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        request = self._request(inputs["point_labels"].shape[1])
        request.infer(inputs, share_inputs=True)
        return [np.array(request.get_output_tensor(i).data, dtype=np.float32, copy=True) for i in (0, 1)]

    def inputs(self, features, points, boxes, masks, attn_sim, target_embedding) -> dict[str, np.ndarray]:
        """The graph's named inputs for one prompt set (see :class:`~persam.decoders.MaskDecoderRuntime`)."""
        h, w = self.grid
        coords, labels = [], []
        if points is not None:
            coords.append(to_numpy(points[0]).reshape(1, -1, 2))
            labels.append(to_numpy(points[1]).reshape(1, -1))
        if boxes is not None:
            coords.append(to_numpy(boxes).reshape(1, 2, 2))
            labels.append(np.array([[2.0, 3.0]], np.float32))
        else:
            coords.append(np.zeros((1, 1, 2), np.float32))
            labels.append(np.array([[-1.0]], np.float32))
        values = {
            "image_embeddings": to_numpy(features),
            "point_coords": np.concatenate(coords, axis=1),
            "point_labels": np.concatenate(labels, axis=1),
            "mask_input": to_numpy(masks) if masks is not None else np.zeros((1, 1, 4 * h, 4 * w), np.float32),
            "has_mask_input": np.array([1.0 if masks is not None else 0.0], np.float32),
            "attn_sim": (to_numpy(attn_sim).reshape(1, 1, 1, h * w) if attn_sim is not None
                         else np.zeros((1, 1, 1, h * w), np.float32)),
            "has_attn_sim": np.array([1.0 if attn_sim is not None else 0.0], np.float32),
            "target_embedding": (to_numpy(target_embedding).reshape(1, 1, -1) if target_embedding is not None
                                 else np.zeros((1, 1, self.embed_dim), np.float32)),
        }
        return {name: values[name] for name in INPUT_NAMES}

    def __call__(self, features, points, boxes, masks, attn_sim, target_embedding):
        if points is None and boxes is None:
            return self.fallback(features, points, boxes, masks, attn_sim, target_embedding)
        logits, iou = self._run(self.inputs(features, points, boxes, masks, attn_sim, target_embedding))
        return torch.from_numpy(logits).to(self.device), torch.from_numpy(iou).to(self.device)
