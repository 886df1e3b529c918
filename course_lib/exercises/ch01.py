"""Chapter 1 exercises: the forward process, the posterior mean, and the score.

Every student function takes plain tensors: alpha_bar of shape (T,), t of shape (B,) (long,
integer steps, 0 = least noisy), and data of shape (B, D).
"""

from __future__ import annotations

from typing import Callable

import torch

from ..process.diffusion import add_noise, eps_to_score
from ..process.schedules import NoiseSchedule, cosine_betas, linear_betas
from .core import check_against_reference


def _cases(num: int = 4, seed: int = 0, t_min: int = 0) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    cases = []
    for k in range(num):
        T = (1000, 50)[k % 2]
        betas = (linear_betas, cosine_betas)[(k // 2) % 2](T)
        B, D = (16, 2) if k < 2 else (7, 3)
        cases.append({
            "x": torch.randn(B, D, generator=g, dtype=torch.float64),
            "t": torch.randint(t_min, T, (B,), generator=g),
            "z": torch.randn(B, D, generator=g, dtype=torch.float64),
            "alpha_bar": torch.cumprod(1 - betas, 0),
        })
    return cases


def _schedule(alpha_bar: torch.Tensor) -> NoiseSchedule:
    prev = torch.cat([alpha_bar.new_ones(1), alpha_bar[:-1]])
    return NoiseSchedule(1 - alpha_bar / prev)


def check_q_sample(q_sample: Callable) -> None:
    """Exercise 1.1: ``q_sample(x0, t, noise, alpha_bar) -> x_t`` (DDPM Eq. 4)."""
    cases = [{"x0": c["x"], "t": c["t"], "noise": c["z"], "alpha_bar": c["alpha_bar"]} for c in _cases()]

    def reference(x0, t, noise, alpha_bar):
        return add_noise(_schedule(alpha_bar), x0, t, noise)

    check_against_reference(
        "q_sample", q_sample, reference, cases,
        hint="x_t = sqrt(alpha_bar[t]) * x0 + sqrt(1 - alpha_bar[t]) * noise; index alpha_bar with t, "
             "then reshape the (B,) result to (B, 1) so it broadcasts over the data dimensions.")


def reference_posterior_mean(x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor,
                             alpha_bar: torch.Tensor) -> torch.Tensor:
    """mu_tilde_t(x_t, x0) of q(x_{t-1} | x_t, x0) (DDPM Eq. 7), with alpha_bar_{-1} = 1."""
    a_bar = alpha_bar[t][:, None]
    a_bar_prev = torch.where(t > 0, alpha_bar[(t - 1).clamp(min=0)], torch.ones_like(alpha_bar[t]))[:, None]
    beta = 1 - a_bar / a_bar_prev
    return a_bar_prev.sqrt() * beta / (1 - a_bar) * x0 + (1 - beta).sqrt() * (1 - a_bar_prev) / (1 - a_bar) * x_t


def check_posterior_mean(posterior_mean: Callable) -> None:
    """Exercise 1.2: ``posterior_mean(x0, x_t, t, alpha_bar) -> mu_tilde`` (DDPM Eq. 7)."""
    cases = [{"x0": c["x"], "x_t": c["z"], "t": c["t"], "alpha_bar": c["alpha_bar"]} for c in _cases(seed=1)]
    cases[0]["t"][0] = 0  # the edge case: at t = 0, alpha_bar_{t-1} is 1 by convention
    check_against_reference(
        "posterior_mean", posterior_mean, reference_posterior_mean, cases,
        hint="beta_t = 1 - alpha_bar[t] / alpha_bar[t-1] (with alpha_bar[-1] = 1 at t = 0); the weight of x0 "
             "is sqrt(alpha_bar[t-1]) beta_t / (1 - alpha_bar[t]) and that of x_t is "
             "sqrt(alpha_t) (1 - alpha_bar[t-1]) / (1 - alpha_bar[t]).")


def check_score_from_eps(score_from_eps: Callable) -> None:
    """Exercise 1.3: ``score_from_eps(eps, t, alpha_bar) -> score`` = -eps / sqrt(1 - alpha_bar_t)."""
    cases = [{"eps": c["z"], "t": c["t"], "alpha_bar": c["alpha_bar"]} for c in _cases(seed=2)]

    def reference(eps, t, alpha_bar):
        return eps_to_score(_schedule(alpha_bar), eps, t)

    check_against_reference(
        "score_from_eps", score_from_eps, reference, cases,
        hint="x_t = sqrt(alpha_bar) x0 + sqrt(1 - alpha_bar) eps, so the score of q(x_t | x0) is "
             "-(x_t - sqrt(alpha_bar) x0) / (1 - alpha_bar) = -eps / sqrt(1 - alpha_bar[t]). Mind the sign.")
