"""Toy 2-D distributions."""

from __future__ import annotations

import math

import torch


def swiss_roll(n: int, noise: float = 0.25, generator: torch.Generator | None = None,
               device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """n points of the 2-D swiss roll, standardised to roughly zero mean and unit variance.

    Follows scikit-learn's make_swiss_roll (angle 1.5 pi (1 + 2u), u ~ U(0, 1)), keeping the
    (x, z) plane, divided by 7.5 so each coordinate has a standard deviation near 1.

    Returns:
        (n, 2) tensor on ``device`` with ``dtype``.
    """
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    u = torch.rand(n, generator=generator, dtype=torch.float64)
    angle = 1.5 * math.pi * (1 + 2 * u)
    xy = torch.stack([angle * torch.cos(angle), angle * torch.sin(angle)], dim=1)  # (n, 2)
    xy = xy + noise * torch.randn(n, 2, generator=generator, dtype=torch.float64)
    return (xy / 7.5).to(device=device, dtype=dtype)


def random_batches(data: torch.Tensor, batch_size: int, generator: torch.Generator | None = None):
    """An endless iterator of random batches (with replacement) drawn from ``data`` where it lies
    (on the GPU if data is there: no DataLoader). ``generator`` must live on data's device."""
    if batch_size < 1 or data.shape[0] < 1:
        raise ValueError(f"need a non-empty data set and batch_size >= 1; got {data.shape[0]} rows, batch_size {batch_size}")
    while True:
        idx = torch.randint(0, data.shape[0], (batch_size,), device=data.device, generator=generator)
        yield data[idx]
