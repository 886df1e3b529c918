"""Noise schedules of the variance-preserving (DDPM) process, computed in float64.

Time convention (the whole course; see the book's notation page):
    integer step t in {0, ..., T-1}; t = 0 is the least noisy step (just above the data x0),
    t = T-1 the noisiest. The paper's step t' in {1, ..., T} is our t = t' - 1, exactly as in
    diffusers. Continuous time, where a chapter needs it, is s = (t + 1) / T in (0, 1]:
    s -> 0 is data, s = 1 is noise.

A schedule rescaled to zero terminal SNR (Lin et al. 2024) has beta_{T-1} = 1, so alpha_bar_{T-1} = 0:
x_{T-1} is pure noise, and only an x0 or v prediction is defined there.

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
        if not bool(((b > 0) & (b < 1)).all()) and not (bool(((b[:-1] > 0) & (b[:-1] < 1)).all()) and b[-1] == 1):
            raise ValueError("every beta must lie in (0, 1), the last in (0, 1] (1: zero terminal SNR)")

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


def scaled_linear_betas(num_steps: int = 1000, beta_start: float = 0.00085, beta_end: float = 0.012) -> torch.Tensor:
    """Latent diffusion's "scaled_linear" schedule: sqrt(beta) linear from sqrt(beta_start) to sqrt(beta_end),
    then squared (diffusers' name; Stable Diffusion's 0.00085 and 0.012 by default), float64."""
    return torch.linspace(beta_start ** 0.5, beta_end ** 0.5, num_steps, dtype=torch.float64) ** 2


def rescale_zero_terminal_snr(betas: torch.Tensor) -> torch.Tensor:
    """Lin et al. 2024, Alg. 1: shift and scale sqrt(alpha_bar) so that it keeps its first value and ends
    at exactly 0 (zero SNR at t = T-1, so beta_{T-1} = 1); float64 in, float64 out."""
    alpha_bar_sqrt = torch.cumprod(1 - betas, dim=0).sqrt()
    first, last = alpha_bar_sqrt[0].clone(), alpha_bar_sqrt[-1].clone()
    alpha_bar_sqrt = (alpha_bar_sqrt - last) * (first / (first - last))  # Lin et al. 2024, Alg. 1: shift, scale
    alpha_bar = alpha_bar_sqrt ** 2
    alphas = torch.cat([alpha_bar[:1], alpha_bar[1:] / alpha_bar[:-1]])  # Lin et al. 2024, Alg. 1: undo cumprod
    return 1 - alphas


_BETA_RANGES = {"linear": (1e-4, 0.02), "scaled_linear": (0.00085, 0.012)}


def make_schedule(name: str = "linear", num_steps: int = 1000, beta_start: float | None = None,
                  beta_end: float | None = None, zero_terminal_snr: bool = False) -> NoiseSchedule:
    """The schedule ``"linear"``, ``"scaled_linear"`` or ``"cosine"`` with ``num_steps`` steps.

    ``beta_start`` and ``beta_end`` (linear and scaled_linear only) default to DDPM's 1e-4 and 0.02 for
    "linear" and Stable Diffusion's 0.00085 and 0.012 for "scaled_linear". ``zero_terminal_snr`` rescales
    the betas with ``rescale_zero_terminal_snr`` (diffusers' ``rescale_betas_zero_snr=True``).
    """
    if not isinstance(num_steps, int) or num_steps < 2:
        raise ValueError(f"num_steps must be an int >= 2, got {num_steps!r}")
    if name == "cosine":
        if beta_start is not None or beta_end is not None:
            raise ValueError("beta_start and beta_end apply to 'linear' and 'scaled_linear', not 'cosine'")
        betas = cosine_betas(num_steps)
    elif name in _BETA_RANGES:
        start = _BETA_RANGES[name][0] if beta_start is None else beta_start
        end = _BETA_RANGES[name][1] if beta_end is None else beta_end
        if not 0 < start <= end < 1:
            raise ValueError(f"need 0 < beta_start <= beta_end < 1, got {start} and {end}")
        betas = (linear_betas if name == "linear" else scaled_linear_betas)(num_steps, start, end)
    else:
        raise ValueError(f"Unknown schedule {name!r}; expected 'linear' or 'cosine', "
                         "or 'scaled_linear' (latent diffusion).")
    return NoiseSchedule(rescale_zero_terminal_snr(betas) if zero_terminal_snr else betas)
