"""Time embeddings."""

from __future__ import annotations

import math

import torch


def sinusoidal_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Transformer sinusoidal features of timesteps (Vaswani et al. 2017, Sec. 3.5; DDPM App. B).

    Args:
        t: (B,) steps, integer or float.
        dim: output width (even).
    Returns:
        (B, dim) float32: [cos(t w_k), sin(t w_k)] with w_k = max_period^(-k / (dim/2)).
    """
    if t.ndim != 1:
        raise ValueError(f"t must have shape (B,), got {tuple(t.shape)}")
    if dim % 2:
        raise ValueError(f"dim must be even, got {dim}")
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None, :]  # (B, half)
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # (B, dim)
