"""Where image features come from: the encoder seam between the predictor and a runtime.

:class:`~persam.predictor.SamPredictor` never calls a network directly. It hands the preprocessed image
(normalised, padded to the model's square, ``(1, 3, S, S)`` float32) to an :class:`ImageEncoder` and gets
SAM's image embedding ``(1, C, S/16, S/16)`` back. Today's PyTorch module is :class:`TorchEncoder`; another
runtime (ONNX Runtime, OpenVINO) is one more class with the same two members, and the method code above it
does not change.

The location prior and the score have a :class:`FeatureSource` of their own. By default it is SAM's
embedding itself (:class:`SamFeatures`, exactly what the decoder gets); a different feature extractor can
later feed the prior while the decoder keeps SAM's features. Its ``name`` is recorded in concepts, so a
concept is only reused with the features it was made from.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import nn


@runtime_checkable
class ImageEncoder(Protocol):
    """Maps a preprocessed ``(1, 3, S, S)`` float32 batch to SAM's ``(1, C, S/16, S/16)`` embedding."""

    #: What runs the encoder ("torch", "onnxruntime", "openvino", ...), for records and messages.
    runtime: str

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


class TorchEncoder:
    """The model's own PyTorch image encoder, run eagerly on the model's device."""

    runtime = "torch"

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)


@runtime_checkable
class FeatureSource(Protocol):
    """Features the location prior and the part-similarity score are computed on.

    ``features(x, sam_features)`` receives the preprocessed image ``x`` (as the encoder got it) and SAM's
    embedding of it (as the decoder sees it), and returns ``(1, C', h, w)`` features on the same padded grid.
    """

    name: str

    def features(self, x: torch.Tensor, sam_features: torch.Tensor) -> torch.Tensor: ...


class SamFeatures:
    """SAM's own image embedding (the paper's choice, and the default)."""

    name = "sam"

    def features(self, x: torch.Tensor, sam_features: torch.Tensor) -> torch.Tensor:
        return sam_features


DEFAULT_FEATURES = SamFeatures()
