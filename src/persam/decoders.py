"""Where masks come from: the decoder seam between the predictor and a runtime.

:class:`~persam.predictor.SamPredictor` hands a :class:`MaskDecoderRuntime` the image embedding and the
prompts already mapped to the model's input square, and gets all four mask tokens' low-resolution logits and
predicted IoUs back (the single-mask token first, then SAM's three multi-scale masks); the predictor picks
among them. :class:`TorchDecoder` runs the model's own prompt encoder and mask decoder (the reference);
:mod:`persam.runtimes` adds graph runtimes of the same two parts with PerSAM's guidance inputs. PerSAM-F's fit
only reads the decoder's outputs, so any of them serves it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor


@runtime_checkable
class MaskDecoderRuntime(Protocol):
    """Prompt encoder + mask decoder for one image.

    ``points`` is ``(coords (1, N, 2), labels (1, N))`` in input-square pixels, ``boxes`` ``(1, 4)`` likewise,
    ``masks`` ``(1, 1, 4h, 4w)`` low-res logits of an earlier decoding; PerSAM's ``attn_sim`` ``(1, 1, 1, h*w)``
    and ``target_embedding`` ``(1, 1, C)``; any of them may be None. Returns logits ``(1, 4, 4h, 4w)`` and IoUs
    ``(1, 4)``.
    """

    #: What runs the decoder ("torch", "openvino", ...), for records and messages.
    runtime: str

    def __call__(
        self,
        features: Tensor,
        points: tuple[Tensor, Tensor] | None,
        boxes: Tensor | None,
        masks: Tensor | None,
        attn_sim: Tensor | None,
        target_embedding: Tensor | None,
    ) -> tuple[Tensor, Tensor]: ...


class TorchDecoder:
    """The model's own PyTorch prompt encoder and mask decoder."""

    runtime = "torch"

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model

    def __call__(
        self,
        features: Tensor,
        points: tuple[Tensor, Tensor] | None,
        boxes: Tensor | None,
        masks: Tensor | None,
        attn_sim: Tensor | None,
        target_embedding: Tensor | None,
    ) -> tuple[Tensor, Tensor]:
        prompt_encoder = self.model.prompt_encoder
        sparse, dense = prompt_encoder(points, boxes, masks)
        return self.model.mask_decoder.predict_all(features, prompt_encoder.get_dense_pe(), sparse, dense,
                                                   attn_sim, target_embedding)
