"""PerSAM-F's only learned part: two weights that fuse SAM's three multi-scale masks.

The paper fits them with 1000 AdamW steps (dice + focal loss, cosine learning-rate schedule) and re-runs
SAM's decoder at every step, although the decoder's three masks do not depend on the weights. Here the
decoder runs once per reference, and the fit works on its low-resolution logits (the 256x256 grid the
decoder outputs, padding cropped) against the reference mask brought onto that grid. The objective and the
optimiser are the paper's; the gradient of the loss with respect to the two weights is written out in
closed form, so one step costs a few vector operations instead of a decoder pass plus autograd.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

INITIAL_WEIGHT = 1.0 / 3.0  # the paper's initialisation: equal thirds
FOCAL_ALPHA, FOCAL_GAMMA = 0.25, 2.0  # RetinaNet's focal loss, as in the paper


def fused_weights(free: torch.Tensor) -> torch.Tensor:
    """The 3 fusion weights from the 2 free parameters: (1 - w1 - w2, w1, w2), summing to one."""
    return torch.cat([(1 - free.sum()).reshape(1), free])


def dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - soft Dice of sigmoid(logits) with the target, smoothed by 1 as in the paper."""
    prob = logits.sigmoid()
    return 1 - (2 * (prob * target).sum() + 1) / (prob.sum() + target.sum() + 1)


def focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean sigmoid focal loss with the paper's alpha=0.25, gamma=2."""
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = prob * target + (1 - prob) * (1 - target)
    alpha_t = FOCAL_ALPHA * target + (1 - FOCAL_ALPHA) * (1 - target)
    return (alpha_t * ce * (1 - p_t) ** FOCAL_GAMMA).mean()


def fusion_loss(weights: torch.Tensor, logits: list[torch.Tensor], targets: list[torch.Tensor]) -> torch.Tensor:
    """The fitted objective: sum over references of dice + focal of the fused logits."""
    total = torch.zeros(())
    for stack, target in zip(logits, targets, strict=True):
        fused = torch.einsum("k,k...->...", weights, stack)
        total = total + dice_loss(fused, target) + focal_loss(fused, target)
    return total


class _Reference:
    """One reference's fixed data, with the closed-form gradient of its loss in the 2 free weights."""

    def __init__(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        self.stack = logits.detach().float().reshape(3, -1).contiguous()
        t = (target.detach().float().reshape(-1) > 0.5).float()
        self.target = t
        self.background = 1 - t
        self.sign = 2 * t - 1
        alpha_t = FOCAL_ALPHA * t + (1 - FOCAL_ALPHA) * (1 - t)
        self.focal_coef = -alpha_t * self.sign / t.numel()
        self.twice_target = 2 * t
        self.target_sum = float(t.sum())
        self.diffs = (self.stack[1:] - self.stack[:1]).contiguous()  # d(fused)/d(free weights)

    def gradient(self, weights: torch.Tensor) -> torch.Tensor:
        """d(dice + focal)/d(w1, w2) at the 3 fusion weights, for a binary target.

        With u = sign * z (z the fused logit, sign = +1 on the object, -1 off it), q = sigmoid(-u) and
        p = 1 - q: the focal term is alpha_t q^2 softplus(-u), whose derivative in z is
        -sign alpha_t q^2 (2 p softplus(-u) + q); the Dice term's derivative is (A - 2 t B) / B^2 * s (1 - s)
        with s = sigmoid(z), A = 2 sum(s t) + 1 and B = sum(s) + sum(t) + 1.
        """
        u = (weights @ self.stack).mul_(self.sign)
        q = torch.sigmoid(-u)
        p = 1 - q
        grad = F.softplus(-u).mul_(p).mul_(2).add_(q).mul_(q).mul_(q).mul_(self.focal_coef)
        p_object = float(p @ self.target)  # sum of s over the object (s = p there, q elsewhere)
        a = 2 * p_object + 1
        b = p_object + float(q @ self.background) + self.target_sum + 1
        grad.add_((a - self.twice_target * b).mul_(p.mul_(q)), alpha=1 / (b * b))
        return self.diffs @ grad


def fit_fusion_weights(
    logits: list[torch.Tensor],
    targets: list[torch.Tensor],
    steps: int = 1000,
    lr: float = 1e-3,
    weight_decay: float = 1e-2,
) -> torch.Tensor:
    """Fit the 3 fusion weights on one or more references; deterministic.

    ``logits[i]`` is (3, h, w): SAM's three multi-mask logits for reference i; ``targets[i]`` is (h, w):
    the reference mask on the same grid (values > 0.5 are the object). The loss is the sum over references of
    dice + focal, minimised as the paper does: AdamW (lr 1e-3, eps 1e-4, PyTorch's default weight decay
    0.01) from equal thirds, with a cosine-annealed learning rate over ``steps`` steps. The update is
    ``torch.optim.AdamW``'s, done on two Python floats.
    """
    if not logits or len(logits) != len(targets):
        raise ValueError("fit_fusion_weights needs one target per set of logits")
    refs = [_Reference(x, t) for x, t in zip(logits, targets, strict=True)]
    beta1, beta2, eps = 0.9, 0.999, 1e-4
    free = [INITIAL_WEIGHT, INITIAL_WEIGHT]
    m, v = [0.0, 0.0], [0.0, 0.0]
    with torch.inference_mode():
        for step in range(1, steps + 1):
            weights = torch.tensor([1 - free[0] - free[1], free[0], free[1]])
            grad = sum(ref.gradient(weights) for ref in refs).tolist()
            step_lr = lr * (1 + math.cos(math.pi * (step - 1) / steps)) / 2
            for i in range(2):
                free[i] *= 1 - step_lr * weight_decay
                m[i] = beta1 * m[i] + (1 - beta1) * grad[i]
                v[i] = beta2 * v[i] + (1 - beta2) * grad[i] ** 2
                m_hat = m[i] / (1 - beta1**step)
                v_hat = v[i] / (1 - beta2**step)
                free[i] -= step_lr * m_hat / (math.sqrt(v_hat) + eps)
    return torch.tensor([1 - free[0] - free[1], free[0], free[1]], dtype=torch.float32)
