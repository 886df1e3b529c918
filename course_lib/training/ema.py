"""An exponential moving average of a model's weights (DDPM keeps one with decay 0.9999).
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """An exponential moving average of a model's weights: ema <- decay * ema + (1 - decay) * w."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        ema_params = list(self.model.parameters())
        params = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(ema_params, params, 1.0 - self.decay)
        for b_ema, b in zip(self.model.buffers(), model.buffers()):
            b_ema.copy_(b)
