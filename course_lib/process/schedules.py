"""Noise schedules of the variance-preserving (DDPM) process, computed in float64.

Time convention (the whole course; see the book's notation page):
    integer step t in {0, ..., T-1}; t = 0 is the least noisy step (just above the data x0),
    t = T-1 the noisiest. The paper's step t' in {1, ..., T} is our t = t' - 1, exactly as in
    diffusers. Continuous time, where a chapter needs it, is s = (t + 1) / T in (0, 1]:
    s -> 0 is data, s = 1 is noise.

Names -> symbols:
    betas      beta_t        variance added at step t (DDPM Eq. 2)
    alphas     alpha_t       1 - beta_t
    alpha_bar  alpha_bar_t   prod_{s<=t} alpha_s, the signal fraction of x_t (DDPM Eq. 4)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import torch


@dataclass(frozen=True)
class NoiseSchedule:
    """A beta schedule and the quantities derived from it, all float64 tensors of shape (T,)."""

    betas: torch.Tensor

    def __post_init__(self) -> None:
        b = self.betas
        if b.ndim != 1 or b.numel() < 2:
            raise ValueError(f"betas must be a 1-D tensor of T >= 2 values, got shape {tuple(b.shape)}")
        if b.dtype != torch.float64:
            raise TypeError(f"betas must be float64 (schedules are computed in float64), got {b.dtype}")
        if not bool(((b > 0) & (b < 1)).all()):
            raise ValueError("every beta must lie in (0, 1)")

    @property
    def num_steps(self) -> int:
        return self.betas.numel()

    # Computed once per schedule (samplers read them several times per step); treat them as read-only.
    @cached_property
    def alphas(self) -> torch.Tensor:
        return 1.0 - self.betas

    @cached_property
    def alpha_bar(self) -> torch.Tensor:
        return torch.cumprod(self.alphas, dim=0)  # DDPM Eq. 4: alpha_bar_t = prod_s alpha_s

    def continuous_time(self, t: torch.Tensor | int) -> torch.Tensor:
        """Map integer steps t in [0, T) to continuous time s = (t + 1) / T in (0, 1]."""
        return (torch.as_tensor(t, dtype=torch.float64) + 1.0) / self.num_steps


def linear_betas(num_steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """DDPM's linear schedule (Sec. 4: beta from 1e-4 to 0.02 over T = 1000), float64.

    The end points do not depend on T (as in diffusers): with few steps, alpha_bar_{T-1} stays
    well above 0, so x_{T-1} still holds signal; the chapters use T = 1000 unless they say why.
    """
    return torch.linspace(beta_start, beta_end, num_steps, dtype=torch.float64)


def cosine_betas(num_steps: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Improved DDPM's cosine schedule (Nichol & Dhariwal 2021, Eq. 17), float64.

    alpha_bar(u) = cos^2(((u + s) / (1 + s)) * pi / 2) for u in [0, 1], and
    beta_t = min(1 - alpha_bar((t+1)/T) / alpha_bar(t/T), max_beta)  (Eq. 17 and the clip below it).
    """
    def f(u: float) -> float:
        return math.cos((u + s) / (1 + s) * math.pi / 2) ** 2

    betas = [min(1 - f((i + 1) / num_steps) / f(i / num_steps), max_beta) for i in range(num_steps)]
    return torch.tensor(betas, dtype=torch.float64)


def make_schedule(name: str = "linear", num_steps: int = 1000) -> NoiseSchedule:
    """The schedule ``"linear"`` or ``"cosine"`` with ``num_steps`` steps."""
    if not isinstance(num_steps, int) or num_steps < 2:
        raise ValueError(f"num_steps must be an int >= 2, got {num_steps!r}")
    if name == "linear":
        return NoiseSchedule(linear_betas(num_steps))
    if name == "cosine":
        return NoiseSchedule(cosine_betas(num_steps))
    raise ValueError(f"Unknown schedule {name!r}; expected 'linear' or 'cosine'.")
