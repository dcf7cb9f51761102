"""The prompt encoder + mask decoder as one graph with fixed, always-present inputs: what a graph runtime
runs (:class:`persam.runtimes.OpenVinoDecoder`) and what ``persam export`` writes.

The graph follows SAM's own ONNX export (points and box corners as one labelled point list, a mask prompt
switched by a flag) and adds PerSAM's two guidance inputs: ``attn_sim`` (target-guided attention, switched by
``has_attn_sim``) and ``target_embedding`` (target-semantic prompting; zeros = none). It returns all four
mask tokens' low-res logits (the single-mask token first, then SAM's three multi-scale masks) and their
predicted IoUs.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import Tensor, nn

from ..modeling.transformer import Attention
from .cache import export_onnx

INPUT_NAMES = ("image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input", "attn_sim",
               "has_attn_sim", "target_embedding")
OUTPUT_NAMES = ("low_res_masks", "iou_predictions")
DYNAMIC_AXES = {"point_coords": {1: "num_points"}, "point_labels": {1: "num_points"}}


class SwitchedAttention(Attention):
    """Token-to-image attention whose PerSAM guidance is on or off by a graph input, not by Python.

    With ``flag`` 0 this is SAM's attention (``softmax(qk)``), with 1 PerSAM's ``softmax(softmax(qk) + sim)``.
    """

    flag: Tensor | None = None

    def forward(self, q: Tensor, k: Tensor, v: Tensor, attn_sim: Tensor | None = None) -> Tensor:
        if attn_sim is None or self.flag is None:
            return super().forward(q, k, v, attn_sim)
        q, k, v = self._heads(self.q_proj(q)), self._heads(self.k_proj(k)), self._heads(self.v_proj(v))
        attn = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
        guided = torch.softmax(attn + attn_sim, dim=-1)
        attn = attn + self.flag * (guided - attn)
        out = attn @ v
        b, _, n, _ = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, n, -1))


class DecoderGraph(nn.Module):
    """Prompt encoder + mask decoder of one image, with fixed-shape, always-present inputs (for export)."""

    def __init__(self, sam: nn.Module) -> None:
        super().__init__()
        self.prompt_encoder = copy.deepcopy(sam.prompt_encoder)
        self.mask_decoder = copy.deepcopy(sam.mask_decoder)
        self.switched: list[SwitchedAttention] = []
        for layer in self.mask_decoder.transformer.layers:
            attn = layer.cross_attn_token_to_image
            attn.__class__ = SwitchedAttention  # same weights, switchable guidance
            self.switched.append(attn)
        self.register_buffer("image_pe", sam.prompt_encoder.get_dense_pe().detach().clone())

    def _sparse(self, coords: Tensor, labels: Tensor) -> Tensor:
        pe = self.prompt_encoder.pe_layer.forward_with_coords(coords + 0.5, self.prompt_encoder.input_image_size)
        labels = labels.unsqueeze(-1)
        pe = torch.where(labels == -1, self.prompt_encoder.not_a_point_embed.weight, pe)
        for i, emb in enumerate(self.prompt_encoder.point_embeddings):
            pe = pe + (labels == i).to(pe.dtype) * emb.weight
        return pe

    def forward(self, image_embeddings: Tensor, point_coords: Tensor, point_labels: Tensor, mask_input: Tensor,
                has_mask_input: Tensor, attn_sim: Tensor, has_attn_sim: Tensor,
                target_embedding: Tensor) -> tuple[Tensor, Tensor]:
        sparse = self._sparse(point_coords, point_labels)
        no_mask = self.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
        dense = self.prompt_encoder.mask_downscaling(mask_input)
        dense = has_mask_input * dense + (1 - has_mask_input) * no_mask
        for attn in self.switched:
            attn.flag = has_attn_sim
        try:
            return self.mask_decoder.predict_all(image_embeddings, self.image_pe, sparse, dense, attn_sim,
                                                 target_embedding)
        finally:
            for attn in self.switched:
                attn.flag = None


def decoder_example(sam: nn.Module, points: int = 2) -> dict[str, Tensor]:
    """Inputs of the decoder graph, by name, with neutral values (no mask, no guidance)."""
    c = sam.prompt_encoder.embed_dim
    h, w = sam.prompt_encoder.image_embedding_size
    return {
        "image_embeddings": torch.zeros(1, c, h, w),
        "point_coords": torch.zeros(1, points, 2),
        "point_labels": torch.tensor([[1.0] + [-1.0] * (points - 1)]),
        "mask_input": torch.zeros(1, 1, 4 * h, 4 * w),
        "has_mask_input": torch.zeros(1),
        "attn_sim": torch.zeros(1, 1, 1, h * w),
        "has_attn_sim": torch.zeros(1),
        "target_embedding": torch.zeros(1, 1, c),
    }


def export_decoder(sam: nn.Module, path) -> None:
    """``sam``'s decoder graph as ONNX at ``path``, the number of prompt points left dynamic (what the runtime
    cache and ``persam export`` both write)."""
    example = decoder_example(sam)
    export_onnx(DecoderGraph(sam).cpu().eval(), tuple(example[n] for n in INPUT_NAMES), path, list(INPUT_NAMES),
                list(OUTPUT_NAMES), DYNAMIC_AXES)
