"""Classifier guidance (Dhariwal & Nichol 2021, arXiv 2105.05233, Sec. 4): the gradient of a noise-aware
classifier's log-probability shifts the noise prediction, and the classifiers' training losses.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .diffusion import add_noise, gather
from .guidance import GuidedModel, _as_labels, _check_probability, _unpack, check_labels
from .schedules import NoiseSchedule


def log_prob_grad(classifier: Callable[..., torch.Tensor], x_t: torch.Tensor, t: torch.Tensor,
                  y: int | torch.Tensor) -> torch.Tensor:
    """grad_{x_t} log p_phi(y | x_t, t), (B, C, H, W), by autograd (also inside a sampler's no_grad).

    ``classifier(x_t, t) -> logits (B, K)`` must be in eval mode: batch norm in training mode mixes the
    samples of a batch, and each sample's gradient must depend on that sample alone.
    """
    if isinstance(classifier, nn.Module) and classifier.training:
        raise ValueError("the classifier is in training mode; call classifier.eval() first (batch norm in "
                         "training mode couples the samples of a batch)")
    y = _as_labels(y, x_t, "y")
    with torch.enable_grad():
        x = x_t.detach().requires_grad_(True)
        logits = classifier(x, t)
        if logits.ndim != 2 or logits.shape[0] != x.shape[0]:
            raise ValueError(f"classifier(x_t, t) must return logits (B, K) with B = {x.shape[0]}, "
                             f"got {tuple(logits.shape)}")
        check_labels(y, x.shape[0], logits.shape[1], allow_null=False)
        dtype = torch.promote_types(logits.dtype, torch.float32)  # float32 at least (bf16 logits under autocast)
        log_p = torch.log_softmax(logits, dim=1, dtype=dtype).gather(1, y[:, None]).sum()  # sum_i log p(y_i | x_i, t_i)
        (grad,) = torch.autograd.grad(log_p, x)  # samples are independent: the sum's gradient is each one's
    return grad.to(x_t.dtype)


def classifier_guided_eps(eps: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor,
                          classifier: Callable[..., torch.Tensor], y: int | torch.Tensor, scale: float,
                          alpha_bar: torch.Tensor) -> torch.Tensor:
    """eps - s sqrt(1 - alpha_bar_t) grad_{x_t} log p_phi(y | x_t, t) (D&N Eq. 14, with Alg. 2's scale s).

    Args:
        eps: the diffusion model's noise prediction at (x_t, t), (B, C, H, W).
        x_t: (B, C, H, W); t: (B,) integer steps.
        classifier: ``classifier(x_t, t) -> logits (B, K)``, trained on noisy x_t (NoisyClassifierLoss), in eval mode.
        y: the labels to guide towards, (B,) or an int.
        scale: s >= 0; 0 gives eps back.
        alpha_bar: the schedule's alpha_bar, (T,).
    """
    if eps.shape != x_t.shape:
        raise ValueError(f"eps and x_t must share a shape; got {tuple(eps.shape)} and {tuple(x_t.shape)}")
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale < 0:
        raise ValueError(f"scale must be a finite number >= 0, got {scale!r}")
    if alpha_bar.ndim != 1 or (t.numel() and int(t.max()) >= alpha_bar.shape[0]):
        raise ValueError(f"alpha_bar must be the schedule's alpha_bar, shape (T,), indexed by the steps t; got shape "
                         f"{tuple(alpha_bar.shape)} for steps up to {int(t.max()) if t.numel() else None}")
    grad = log_prob_grad(classifier, x_t, t, y)  # (B, C, H, W)
    a_bar = gather(alpha_bar, t, x_t)  # (B, 1, 1, 1)
    return eps - scale * (1 - a_bar).sqrt() * grad  # D&N Eq. 14 (Alg. 2: s grad log p)


def classifier_guided_model(model: GuidedModel, classifier: Callable[..., torch.Tensor], y: int | torch.Tensor,
                            scale: float, alpha_bar: torch.Tensor) -> GuidedModel:
    """An eps model ``model(x_t, t)`` (unconditional) guided by a noise-aware classifier, for any sampler:
    ``guided(x_t, t) = classifier_guided_eps(model(x_t, t), x_t, t, classifier, y, scale, alpha_bar)``."""
    def guided(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return classifier_guided_eps(model(x_t, t), x_t, t, classifier, y, scale, alpha_bar)
    return guided


class ClassifierLoss:
    """Cross-entropy of ``classifier(x0)`` on clean images; called as ``loss(classifier, (x0, y))``."""

    def __init__(self, label_smoothing: float = 0.0):
        _check_probability(label_smoothing, "label_smoothing")
        self.label_smoothing = label_smoothing

    def inputs(self, x0: torch.Tensor, generator: torch.Generator | None = None):
        """What the classifier sees: (x, t), t None for a clean-image classifier."""
        return x0, None

    def __call__(self, classifier: nn.Module, batch, generator: torch.Generator | None = None) -> torch.Tensor:
        x0, y = _unpack(batch)
        x, t = self.inputs(x0, generator)
        logits = classifier(x) if t is None else classifier(x, t)  # (B, K)
        return F.cross_entropy(logits.float(), y, label_smoothing=self.label_smoothing)


class NoisyClassifierLoss(ClassifierLoss):
    """Cross-entropy of ``classifier(x_t, t)`` with x_t ~ q(x_t | x0) (DDPM Eq. 4) at t uniform over
    {0, ..., T-1}: the noise-aware classifier p_phi(y | x_t, t) that classifier guidance needs (D&N Sec. 4)."""

    def __init__(self, schedule: NoiseSchedule, label_smoothing: float = 0.0):
        super().__init__(label_smoothing)
        self.schedule = schedule

    def inputs(self, x0: torch.Tensor, generator: torch.Generator | None = None):
        t = torch.randint(0, self.schedule.num_steps, (x0.shape[0],), device=x0.device, generator=generator)
        noise = torch.randn(x0.shape, device=x0.device, dtype=x0.dtype, generator=generator)
        return add_noise(self.schedule, x0, t, noise), t  # DDPM Eq. 4
