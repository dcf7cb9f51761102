"""Prompt encoder and mask decoder on tiny random models: plain SAM vs PerSAM's guided path."""

from __future__ import annotations

import torch

from ..conftest import tiny_sam


def _inputs(sam, n_sets: int = 1, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    grid = sam.prompt_encoder.image_embedding_size
    feats = torch.randn(1, sam.prompt_encoder.embed_dim, *grid, generator=g)
    coords = torch.rand(n_sets, 2, 2, generator=g) * sam.img_size
    labels = torch.tensor([[1, 0]] * n_sets)
    sparse, dense = sam.prompt_encoder((coords, labels), None, None)
    return feats, sam.prompt_encoder.get_dense_pe(), sparse, dense


def test_prompt_encoder_shapes():
    sam = tiny_sam("vit_b")
    dim = sam.prompt_encoder.embed_dim
    coords = torch.tensor([[[10.0, 20.0]]])
    labels = torch.tensor([[1]])
    sparse, dense = sam.prompt_encoder((coords, labels), None, None)
    assert sparse.shape == (1, 2, dim)  # a padding point is added when there is no box
    box = torch.tensor([[5.0, 5.0, 50.0, 60.0]])
    sparse, _ = sam.prompt_encoder((coords, labels), box, None)
    assert sparse.shape == (1, 3, dim)
    masks = torch.randn(1, 1, *sam.prompt_encoder.mask_input_size)
    _, dense_m = sam.prompt_encoder(None, box, masks)
    assert dense_m.shape == dense.shape
    assert not torch.allclose(dense_m, dense)


def test_decoder_output_shapes():
    sam = tiny_sam("vit_t")
    feats, pe, sparse, dense = _inputs(sam)
    masks, iou = sam.mask_decoder(feats, pe, sparse, dense, multimask_output=True)
    grid = sam.prompt_encoder.image_embedding_size
    assert masks.shape == (1, 3, 4 * grid[0], 4 * grid[1]) and iou.shape == (1, 3)
    masks1, iou1 = sam.mask_decoder(feats, pe, sparse, dense, multimask_output=False)
    assert masks1.shape[1] == 1 and iou1.shape == (1, 1)
    all_masks, all_iou = sam.mask_decoder.predict_all(feats, pe, sparse, dense)
    assert torch.allclose(all_masks[:, 1:], masks, atol=1e-5)
    assert torch.allclose(all_masks[:, :1], masks1, atol=1e-5)


def test_decoder_batches_prompt_sets():
    sam = tiny_sam("vit_t")
    feats, pe, sparse, dense = _inputs(sam, n_sets=3)
    masks, iou = sam.mask_decoder(feats, pe, sparse, dense.expand(3, -1, -1, -1), multimask_output=True)
    for i in range(3):
        m_i, iou_i = sam.mask_decoder(feats, pe, sparse[i : i + 1], dense, multimask_output=True)
        assert torch.allclose(masks[i : i + 1], m_i, atol=1e-4)
        assert torch.allclose(iou[i : i + 1], iou_i, atol=1e-5)


def test_guidance_is_optional_and_changes_the_output():
    sam = tiny_sam("vit_t")
    feats, pe, sparse, dense = _inputs(sam)
    plain, plain_iou = sam.mask_decoder(feats, pe, sparse, dense, False)
    dim = sam.prompt_encoder.embed_dim
    hw = feats.shape[-1] * feats.shape[-2]
    # A zero target embedding is the same as none.
    zero, _ = sam.mask_decoder(feats, pe, sparse, dense, False, target_embedding=torch.zeros(1, 1, dim))
    assert torch.allclose(zero, plain, atol=1e-5)
    # Each guidance input on its own changes the prediction.
    attn_sim = torch.rand(1, 1, 1, hw, generator=torch.Generator().manual_seed(1))
    guided, _ = sam.mask_decoder(feats, pe, sparse, dense, False, attn_sim=attn_sim)
    assert not torch.allclose(guided, plain, atol=1e-3)
    target = torch.randn(1, 1, dim)
    prompted, _ = sam.mask_decoder(feats, pe, sparse, dense, False, target_embedding=target)
    assert not torch.allclose(prompted, plain, atol=1e-3)
    both, _ = sam.mask_decoder(feats, pe, sparse, dense, False, attn_sim=attn_sim, target_embedding=target)
    assert both.shape == plain.shape and torch.isfinite(both).all()


def test_guided_attention_follows_the_paper_formula():
    """softmax(softmax(q k^T / sqrt(d)) + prior), as in the paper's code."""
    from persam.modeling.transformer import Attention

    torch.manual_seed(0)
    attn = Attention(16, 2, downsample_rate=2)  # internal dim 8, 2 heads of 4
    q, k, v = torch.randn(1, 3, 16), torch.randn(1, 10, 16), torch.randn(1, 10, 16)
    prior = torch.zeros(1, 1, 1, 10)
    prior[..., 0] = 1.0

    def heads(x):
        return x.reshape(1, -1, 2, 4).transpose(1, 2)

    with torch.no_grad():
        out = attn(q, k, v, attn_sim=prior)
        qh, kh, vh = heads(attn.q_proj(q)), heads(attn.k_proj(k)), heads(attn.v_proj(v))
        plain = torch.softmax(qh @ kh.transpose(-1, -2) / 2.0, dim=-1)
        guided = torch.softmax(plain + prior, dim=-1)
        expected = attn.out_proj((guided @ vh).transpose(1, 2).reshape(1, 3, 8))
    assert torch.allclose(out, expected, atol=1e-6)
    # Relative to the same double softmax without a prior, key 0 gains weight.
    assert (guided[..., 0] > torch.softmax(plain, dim=-1)[..., 0]).all()
