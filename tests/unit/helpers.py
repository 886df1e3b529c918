"""Helpers shared by the unit tests (import them as ``from helpers import ...``)."""

from __future__ import annotations

import torch


def perturbed(model: torch.nn.Module, scale: float = 0.1, seed: int | None = 0) -> torch.nn.Module:
    """``model`` with every parameter moved off its init by scale * N(0, 1) noise, drawn from a generator
    seeded with ``seed`` (None: the global RNG): zero-initialised layers (adaLN-Zero, DDPM's output convs,
    LoRA's B) would hide bugs."""
    g = None if seed is None else torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype).to(p.device))
    return model
