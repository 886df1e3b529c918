"""Chapter 4 exercises: the DDIM step with eta, and spherical interpolation of noise.

Student functions take plain tensors and numbers: x_t, eps and noise of shape (B, 3, H, W),
integer steps t > t_prev (t_prev = -1 is the data end, where alpha_bar is 1; our time convention),
the schedule's alpha_bar of shape (T,), and eta in [0, 1].
"""

from __future__ import annotations

from typing import Callable

import torch

from ..samplers.ddim import ddim_step, slerp
from ..process.schedules import NoiseSchedule, make_schedule
from .core import check_against_reference


def _schedule_of(alpha_bar: torch.Tensor) -> NoiseSchedule:
    return NoiseSchedule(1 - alpha_bar / torch.cat([torch.ones(1, dtype=alpha_bar.dtype), alpha_bar[:-1]]))


def check_ddim_step(student_ddim_step: Callable) -> None:
    """Exercise 4.1: ``ddim_step(x_t, eps, t, t_prev, alpha_bar, eta, noise) -> x_{t_prev}`` (DDIM Eqs. 12, 16)."""
    g = torch.Generator().manual_seed(0)
    cases = []
    for name, (t, t_prev), eta, shape in [("linear", (980, 960), 0.0, (4, 3, 8, 8)), ("cosine", (500, 400), 0.0, (3, 3, 8, 8)),
                                          ("linear", (600, 580), 1.0, (4, 3, 4, 4)), ("cosine", (300, 100), 0.5, (2, 3, 8, 8)),
                                          ("linear", (19, -1), 0.0, (3, 3, 4, 4))]:
        cases.append({"x_t": torch.randn(shape, generator=g, dtype=torch.float64),
                      "eps": torch.randn(shape, generator=g, dtype=torch.float64), "t": t, "t_prev": t_prev,
                      "alpha_bar": make_schedule(name, 1000).alpha_bar, "eta": eta,
                      "noise": torch.randn(shape, generator=g, dtype=torch.float64)})

    def reference(x_t, eps, t, t_prev, alpha_bar, eta, noise):
        return ddim_step(_schedule_of(alpha_bar), eps, t, t_prev, x_t, eta=eta, noise=noise)

    check_against_reference(
        "ddim_step", student_ddim_step, reference, cases,
        hint="a = alpha_bar[t], a_prev = alpha_bar[t_prev] (1.0 when t_prev = -1); x0_hat = (x_t - sqrt(1 - a) eps) / sqrt(a); "
             "sigma = eta * sqrt((1 - a_prev) / (1 - a)) * sqrt(1 - a / a_prev); "
             "x_prev = sqrt(a_prev) x0_hat + sqrt(1 - a_prev - sigma^2) eps + sigma * noise.",
        rtol=1e-9, atol=1e-10)


def check_slerp(student_slerp: Callable) -> None:
    """Exercise 4.2: ``slerp(z0, z1, weight) -> z`` with a float weight, per example over (B, ...)."""
    g = torch.Generator().manual_seed(1)
    cases = [{"z0": torch.randn(shape, generator=g, dtype=torch.float64),
              "z1": torch.randn(shape, generator=g, dtype=torch.float64), "weight": w}
             for shape, w in [((2, 3, 8, 8), 0.5), ((3, 4, 4, 4), 0.2), ((1, 3, 16, 16), 0.9), ((2, 3, 8, 8), 0.0)]]
    check_against_reference(
        "slerp", student_slerp, slerp, cases,
        hint="per example (flatten all but the batch dimension): theta = arccos(<z0, z1> / (|z0| |z1|)); "
             "z = (sin((1 - w) theta) z0 + sin(w theta) z1) / sin(theta), with theta shaped (B, 1, 1, 1).",
        rtol=1e-9, atol=1e-10)
