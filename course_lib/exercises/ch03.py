"""Chapter 3 exercises: the reverse-step mean from a noise prediction, and x0 from a v prediction.

Student functions take plain tensors: x_t, eps and v of shape (B, 3, H, W), integer steps t of
shape (B,) (0 = least noisy, our time convention) and the schedule's alpha_bar of shape (T,).
"""

from __future__ import annotations

from typing import Callable

import torch

from ..process.diffusion import eps_to_x0, gather, q_posterior, v_to_x0
from ..process.schedules import NoiseSchedule, make_schedule
from .core import check_against_reference


def _schedule_of(alpha_bar: torch.Tensor) -> NoiseSchedule:
    """The schedule whose cumulative product is ``alpha_bar`` (T,)."""
    return NoiseSchedule(1 - alpha_bar / torch.cat([torch.ones(1, dtype=alpha_bar.dtype), alpha_bar[:-1]]))


def _cases(seed: int, prediction: str) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    cases = []
    for name, shape in [("linear", (6, 3, 8, 8)), ("cosine", (4, 3, 16, 16)), ("linear", (3, 3, 4, 4))]:
        t = torch.randint(0, 1000, (shape[0],), generator=g)
        t[0], t[-1] = 0, 999  # both ends: alpha_bar_{t-1} is 1 at t = 0
        cases.append({"x_t": torch.randn(shape, generator=g, dtype=torch.float64),
                      prediction: torch.randn(shape, generator=g, dtype=torch.float64),
                      "t": t, "alpha_bar": make_schedule(name, 1000).alpha_bar})
    return cases


def reference_mean_from_eps(x_t, eps, t, alpha_bar):
    """mu_theta(x_t, t) = posterior mean at x0_hat(eps), which equals DDPM Eq. 11."""
    schedule = _schedule_of(alpha_bar)
    return q_posterior(schedule, eps_to_x0(eps, x_t, gather(alpha_bar, t, x_t)), x_t, t)[0]


def check_mean_from_eps(student_mean_from_eps: Callable) -> None:
    """Exercise 3.1: ``mean_from_eps(x_t, eps, t, alpha_bar) -> mu_theta``, DDPM Eq. 11."""
    check_against_reference(
        "mean_from_eps", student_mean_from_eps, reference_mean_from_eps, _cases(0, "eps"),
        hint="with a = alpha_bar[t], a_prev = alpha_bar[t - 1] (1 at t = 0) and alpha_t = a / a_prev: "
             "mu = (x_t - (1 - alpha_t) / sqrt(1 - a) * eps) / sqrt(alpha_t); reshape each (B,) "
             "coefficient to (B, 1, 1, 1) so that every image uses its own step.",
        rtol=1e-9, atol=1e-10)


def check_v_to_x0(student_v_to_x0: Callable) -> None:
    """Exercise 3.2: ``v_to_x0(x_t, v, t, alpha_bar) -> x0``, from v = sqrt(a) eps - sqrt(1 - a) x0."""
    check_against_reference(
        "v_to_x0", student_v_to_x0,
        lambda x_t, v, t, alpha_bar: v_to_x0(v, x_t, gather(alpha_bar, t, x_t)), _cases(1, "v"),
        hint="with a = alpha_bar[t] reshaped to (B, 1, 1, 1): x_t = sqrt(a) x0 + sqrt(1 - a) eps and "
             "v = sqrt(a) eps - sqrt(1 - a) x0 form a rotation, so x0 = sqrt(a) * x_t - sqrt(1 - a) * v.",
        rtol=1e-9, atol=1e-10)
