"""SAM's mask decoder: predicts mask logits and their IoU from the image and prompt embeddings."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .common import MLP, LayerNorm2d
from .transformer import TwoWayTransformer


class MaskDecoder(nn.Module):
    """Four mask tokens (one single-mask output + three multi-scale outputs) and an IoU token."""

    def __init__(
        self,
        transformer_dim: int,
        transformer: TwoWayTransformer,
        num_multimask_outputs: int = 3,
        iou_head_depth: int = 3,
        iou_head_hidden_dim: int = 256,
    ) -> None:
        super().__init__()
        self.transformer_dim = transformer_dim
        self.transformer = transformer
        self.num_mask_tokens = num_multimask_outputs + 1
        self.iou_token = nn.Embedding(1, transformer_dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, transformer_dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(transformer_dim, transformer_dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(transformer_dim // 4),
            nn.GELU(),
            nn.ConvTranspose2d(transformer_dim // 4, transformer_dim // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(transformer_dim, transformer_dim, transformer_dim // 8, 3) for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = MLP(transformer_dim, iou_head_hidden_dim, self.num_mask_tokens, iou_head_depth)

    def forward(
        self,
        image_embeddings: Tensor,
        image_pe: Tensor,
        sparse_prompt_embeddings: Tensor,
        dense_prompt_embeddings: Tensor,
        multimask_output: bool,
        attn_sim: Tensor | None = None,
        target_embedding: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Return low-resolution mask logits (B, K, 4h, 4w) and predicted IoUs (B, K).

        K is 3 (the multi-scale masks) when ``multimask_output`` else 1 (the single-mask token).
        ``image_embeddings`` is (1, C, h, w) shared by all B prompt sets, or (B, C, h, w).
        ``attn_sim`` and ``target_embedding`` are PerSAM's guidance, see :mod:`.transformer`.
        """
        masks, iou = self.predict_all(
            image_embeddings,
            image_pe,
            sparse_prompt_embeddings,
            dense_prompt_embeddings,
            attn_sim,
            target_embedding,
        )
        sl = slice(1, None) if multimask_output else slice(0, 1)
        return masks[:, sl], iou[:, sl]

    def predict_all(
        self,
        image_embeddings: Tensor,
        image_pe: Tensor,
        sparse_prompt_embeddings: Tensor,
        dense_prompt_embeddings: Tensor,
        attn_sim: Tensor | None = None,
        target_embedding: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """All four mask tokens' logits (B, 4, 4h, 4w) and IoUs (B, 4)."""
        bs = sparse_prompt_embeddings.shape[0]
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        tokens = torch.cat([output_tokens.unsqueeze(0).expand(bs, -1, -1), sparse_prompt_embeddings], dim=1)
        src = image_embeddings
        if src.shape[0] != bs:
            src = src.expand(bs, -1, -1, -1)
        src = src + dense_prompt_embeddings
        pos = image_pe.expand(bs, -1, -1, -1)
        b, c, h, w = src.shape

        hs, src = self.transformer(src, pos, tokens, attn_sim, target_embedding)
        iou_token_out = hs[:, 0]
        mask_tokens_out = hs[:, 1 : 1 + self.num_mask_tokens]

        upscaled = self.output_upscaling(src.transpose(1, 2).reshape(b, c, h, w))
        hyper_in = torch.stack(
            [mlp(mask_tokens_out[:, i]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=1
        )
        b, c, h, w = upscaled.shape
        masks = (hyper_in @ upscaled.view(b, c, h * w)).view(b, -1, h, w)
        return masks, self.iou_prediction_head(iou_token_out)
