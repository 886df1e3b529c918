"""A small residual MLP denoiser for low-dimensional data (chapter 1's swiss roll)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .embeddings import sinusoidal_embedding


@dataclass(frozen=True)
class MLPConfig:
    data_dim: int = 2
    hidden: int = 128
    num_blocks: int = 3
    time_dim: int = 64


class _Block(nn.Module):
    """h + MLP(LayerNorm(h) + time embedding): a pre-norm residual block."""

    def __init__(self, hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.fc1 = nn.Linear(hidden, hidden * 2)
        self.fc2 = nn.Linear(hidden * 2, hidden)

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        return h + self.fc2(nn.functional.silu(self.fc1(self.norm(h) + emb)))  # (B, hidden)


class MLPDenoiser(nn.Module):
    """eps_theta(x_t, t) for x_t of shape (B, data_dim) and t of shape (B,) (integer steps)."""

    def __init__(self, config: MLPConfig = MLPConfig()):
        super().__init__()
        self.config = config
        c = config
        self.inp = nn.Linear(c.data_dim, c.hidden)
        self.time = nn.Sequential(nn.Linear(c.time_dim, c.hidden), nn.SiLU(), nn.Linear(c.hidden, c.hidden))
        self.blocks = nn.ModuleList(_Block(c.hidden) for _ in range(c.num_blocks))
        self.out = nn.Sequential(nn.LayerNorm(c.hidden), nn.Linear(c.hidden, c.data_dim))

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if x_t.ndim != 2 or x_t.shape[1] != self.config.data_dim:
            raise ValueError(f"x_t must have shape (B, {self.config.data_dim}), got {tuple(x_t.shape)}")
        if t.shape != (x_t.shape[0],):
            raise ValueError(f"t must have shape ({x_t.shape[0]},), got {tuple(t.shape)}")
        emb = self.time(sinusoidal_embedding(t, self.config.time_dim).to(x_t.dtype))  # (B, hidden)
        h = self.inp(x_t)  # (B, hidden)
        for block in self.blocks:
            h = block(h, emb)
        return self.out(h)  # (B, data_dim)
