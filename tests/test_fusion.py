"""PerSAM-F's fit: the closed-form gradient and the hand-written AdamW must equal the paper's autograd loop."""

from __future__ import annotations

import pytest
import torch

from persam.fusion import INITIAL_WEIGHT, _Reference, fit_fusion_weights, fused_weights, fusion_loss


def _problem(seed: int, h: int = 40, w: int = 56):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, h, w, generator=g) * 4
    logits[1] += 1.5
    target = torch.zeros(h, w)
    target[h // 4 : 3 * h // 4, w // 5 : 4 * w // 5] = 1
    return logits, target


def _autograd_fit(logits, targets, steps):
    """The paper's loop: autograd through dice + focal, torch.optim.AdamW, cosine-annealed lr."""
    free = torch.full((2,), INITIAL_WEIGHT, requires_grad=True)
    opt = torch.optim.AdamW([free], lr=1e-3, eps=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        opt.zero_grad()
        fusion_loss(fused_weights(free), logits, targets).backward()
        opt.step()
        schedule.step()
    return fused_weights(free.detach())


@pytest.mark.parametrize("weights", [(1 / 3, 1 / 3, 1 / 3), (0.1, 0.7, 0.2), (1.2, -0.1, -0.1)])
def test_closed_form_gradient_matches_autograd(weights):
    logits, target = _problem(0)
    free = torch.tensor(weights[1:], requires_grad=True)
    fusion_loss(fused_weights(free), [logits], [target]).backward()
    ours = _Reference(logits, target).gradient(torch.tensor(weights))
    assert torch.allclose(ours, free.grad, rtol=1e-4, atol=1e-7)


def test_fit_equals_the_paper_optimiser_on_one_and_two_references():
    a, b = _problem(1), _problem(2, 30, 30)
    for logits, targets in (([a[0]], [a[1]]), ([a[0], b[0]], [a[1], b[1]])):
        ours = fit_fusion_weights(logits, targets, steps=300)
        paper = _autograd_fit(logits, targets, 300)
        assert torch.allclose(ours, paper, atol=2e-5), (ours, paper)


def test_fit_lowers_the_loss_and_is_deterministic():
    logits, target = _problem(3)
    start = fusion_loss(torch.full((3,), INITIAL_WEIGHT), [logits], [target])
    w1 = fit_fusion_weights([logits], [target])
    w2 = fit_fusion_weights([logits], [target])
    assert torch.equal(w1, w2)
    assert abs(float(w1.sum()) - 1) < 1e-6
    assert fusion_loss(w1, [logits], [target]) < start


def test_fit_prefers_the_mask_that_matches():
    target = torch.zeros(32, 32)
    target[8:24, 8:24] = 1
    good = (target * 2 - 1) * 6
    logits = torch.stack([-good, good, torch.full_like(good, -3.0)])  # only mask 1 is the object
    w = fit_fusion_weights([logits], [target])
    assert int(torch.argmax(w)) == 1


def test_fit_needs_matching_inputs():
    with pytest.raises(ValueError):
        fit_fusion_weights([], [])
