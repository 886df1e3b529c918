"""Chapter 4 exercises: the DDIM step with eta, spherical interpolation of noise, EDM's noise levels
(Karras sigmas) and one step of EDM's Heun sampler.

Student functions take plain tensors and numbers: x_t, eps and noise of shape (B, 3, H, W),
integer steps t > t_prev (t_prev = -1 is the data end, where alpha_bar is 1; our time convention),
the schedule's alpha_bar of shape (T,), and eta in [0, 1]. The EDM exercises work on noise levels
sigma (floats) and a denoiser ``denoiser(x, sigma) -> x0_hat``.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..process.edm import gaussian_denoiser, karras_sigmas
from ..samplers.ddim import ddim_step, slerp
from ..samplers.edm import edm_heun_sample
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


def check_karras_sigmas(student_karras_sigmas: Callable) -> None:
    """Exercise 4.3: ``karras_sigmas(num_steps, sigma_min, sigma_max, rho) -> (num_steps + 1,)`` float64
    noise levels, sigma_max first, sigma_min at index num_steps - 1, then 0 (EDM Eq. 5)."""
    cases = [{"num_steps": n, "sigma_min": lo, "sigma_max": hi, "rho": rho}
             for n, lo, hi, rho in [(18, 0.002, 80.0, 7.0), (10, 0.0100, 157.4, 7.0), (5, 0.1, 10.0, 1.0),
                                    (8, 0.002, 80.0, 3.0), (1, 0.002, 80.0, 7.0)]]
    check_against_reference(
        "karras_sigmas", student_karras_sigmas, karras_sigmas, cases,
        hint="ramp = linspace(0, 1, num_steps) in float64 (i / (N - 1)); "
             "sigma_i = (sigma_max^(1/rho) + ramp (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho; "
             "then append a 0 (the data end), for num_steps + 1 values.",
        rtol=1e-10, atol=1e-12)


class _Named:
    """A denoiser with a readable name in the checker's messages."""

    def __init__(self, name: str, fn: Callable):
        self.name, self.fn = name, fn

    def __call__(self, x, sigma):
        return self.fn(x, sigma)

    def __repr__(self) -> str:
        return self.name


def check_heun_step(student_heun_step: Callable) -> None:
    """Exercise 4.4: ``heun_step(denoiser, x, sigma, sigma_next) -> x_next``, one step of EDM's
    Algorithm 1 (lines 4-8) from noise level sigma to sigma_next < sigma (floats); at sigma_next = 0
    the step is Euler's, as in EDM and k-diffusion."""
    g = torch.Generator().manual_seed(2)
    W = torch.randn(48, 48, generator=g, dtype=torch.float64) / 48 ** 0.5
    nonlinear = _Named("D(x, sigma) = tanh(W x) / (1 + sigma)",
                       lambda x, sigma: (torch.tanh(x.flatten(1) @ W)  # sigma: a float or (B,)
                                         / (1 + torch.as_tensor(sigma, dtype=x.dtype).reshape(-1, 1))
                                         ).reshape(x.shape))
    gaussian = _Named("the ideal denoiser of N(0.3, 0.5^2) data", gaussian_denoiser(0.3, 0.5))
    cases = [{"denoiser": d, "x": sigma * torch.randn(shape, generator=g, dtype=torch.float64),
              "sigma": sigma, "sigma_next": nxt}
             for d, shape, sigma, nxt in [(gaussian, (4, 3, 4, 4), 80.0, 40.0), (nonlinear, (2, 3, 4, 4), 5.0, 2.5),
                                          (nonlinear, (3, 3, 4, 4), 0.5, 0.1), (gaussian, (2, 3, 4, 4), 0.2, 0.0)]]

    def reference(denoiser, x, sigma, sigma_next):
        return edm_heun_sample(denoiser, x, [sigma, sigma_next])

    check_against_reference(
        "heun_step", student_heun_step, reference, cases,
        hint="d = (x - denoiser(x, sigma)) / sigma; x_euler = x + (sigma_next - sigma) d; if sigma_next == 0 "
             "return x_euler; else d_next = (x_euler - denoiser(x_euler, sigma_next)) / sigma_next and "
             "x_next = x + (sigma_next - sigma) (d + d_next) / 2.",
        rtol=1e-9, atol=1e-10)
