"""Chapter 9 exercises: the consistency function's parameterization, and one step of multi-step LCM sampling.

Student functions take plain tensors: a noisy sample x_t (B, ...), the model's clean estimate x0_hat of
its shape and integer steps t (B,) (long); or a denoised estimate (B, ...), the next step's alpha_bar (a
float) and standard Gaussian noise of the estimate's shape.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..process.consistency import c_out, c_skip
from .core import check_against_reference


def _consistency(x_t: torch.Tensor, x0_hat: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    shape = (-1, *([1] * (x_t.ndim - 1)))
    return c_skip(t).reshape(shape).to(x_t) * x_t + c_out(t).reshape(shape).to(x_t) * x0_hat  # LCM Eq. 9


def check_consistency_function(student_consistency: Callable) -> None:
    """Exercise 9.1: ``consistency(x_t, x0_hat, t) -> c_skip(t) x_t + c_out(t) x0_hat`` with LCM's scalings
    (sigma_data = 0.5, the step scaled by 10)."""
    g = torch.Generator().manual_seed(0)
    cases = []
    for shape, t in [((4, 2), [0, 1, 10, 999]), ((3, 4, 8, 8), [0, 0, 0]), ((5, 3), [2, 19, 39, 500, 999])]:
        cases.append({"x_t": torch.randn(shape, generator=g, dtype=torch.float64),
                      "x0_hat": torch.randn(shape, generator=g, dtype=torch.float64), "t": torch.tensor(t)})
    check_against_reference(
        "consistency", student_consistency, _consistency, cases,
        hint="c_skip = 0.25 / ((10 t)^2 + 0.25) and c_out = 10 t / sqrt((10 t)^2 + 0.25), computed in floating "
             "point from the integer steps and reshaped to (B, 1, ..., 1); at t = 0 the result must be x_t itself "
             "(the boundary condition), from t = 1 on it is almost x0_hat.",
        rtol=1e-9, atol=1e-10)


def _renoise(denoised: torch.Tensor, alpha_bar_next: float, noise: torch.Tensor) -> torch.Tensor:
    return alpha_bar_next ** 0.5 * denoised + (1 - alpha_bar_next) ** 0.5 * noise  # DDPM Eq. 4


def check_renoise(student_renoise: Callable) -> None:
    """Exercise 9.2: ``renoise(denoised, alpha_bar_next, noise) -> z_next``, the forward process from the
    denoised estimate to the next (less noisy) step: sqrt(alpha_bar) x0 + sqrt(1 - alpha_bar) eps."""
    g = torch.Generator().manual_seed(1)
    cases = [{"denoised": torch.randn(shape, generator=g, dtype=torch.float64), "alpha_bar_next": a,
              "noise": torch.randn(shape, generator=g, dtype=torch.float64)}
             for shape, a in [((4, 4, 8, 8), 0.5), ((3, 2), 0.99), ((2, 3), 1e-3)]]
    check_against_reference(
        "renoise", student_renoise, _renoise, cases,
        hint="the closed-form forward process of chapter 3 (DDPM Eq. 4) with x0 = the denoised estimate: "
             "sqrt(alpha_bar_next) * denoised + sqrt(1 - alpha_bar_next) * noise. Square roots on both.",
        rtol=1e-9, atol=1e-10)
