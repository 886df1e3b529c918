"""Solvers of the probability-flow ODE: DPM-Solver++(2M), and Euler and Heun in EDM's sigma form.

Time convention: integer steps t in {0, ..., T-1}, t = 0 nearest the data (see process/schedules.py).
Each sampler visits the given steps t_0 > ... > t_{N-1}, noisiest first, and lands at "step -1",
the data end (alpha_bar = 1, sigma = 0), as diffusers' schedulers do with
``final_sigmas_type="zero"``. States in and out (x_T, the trajectory, the result) are the
course's x_t; Euler and Heun work inside on x = x_t / sqrt(alpha_bar_t).

Names -> symbols:
    alpha_t, sigma_t  sqrt(alpha_bar_t), sqrt(1 - alpha_bar_t)     (DPM-Solver's alpha_t, sigma_t)
    lam               lambda_t = log(alpha_t / sigma_t)           half the log-SNR (DPM-Solver)
    h                 lambda_{t_{i+1}} - lambda_{t_i}             the step in lambda
    sigma             sqrt((1 - alpha_bar_t) / alpha_bar_t)       EDM's noise level: x = x0 + sigma eps
    x0_hat            the model's prediction read as x0 (the denoiser D(x; sigma) of EDM)
    d                 (x - x0_hat) / sigma = dx/dsigma            the ODE's slope (EDM Eq. 3 with sigma(t) = t)
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from ..process.diffusion import check_prediction_type, pred_to_x0
from .ddim import Model, _alpha_bar, _as_steps, _batch, _spaced, check_inference_steps
from ..process.schedules import NoiseSchedule


def dpm_solver_timesteps(num_train_steps: int, num_inference_steps: int,
                         spacing: str = "linspace", steps_offset: int = 0) -> torch.Tensor:
    """The N steps diffusers' DPMSolverMultistepScheduler visits, (N,) long, noisiest first.

    It spaces N + 1 points and drops the last (about 0), since its last update lands on sigma = 0
    itself: "linspace" (its default) is round(linspace(0, T-1, N+1)) reversed without its end,
    "leading" arange(N+1) * (T // (N+1)) likewise (plus ``steps_offset``); "trailing" is as for DDIM.
    """
    check_inference_steps(num_train_steps, num_inference_steps, spacing)
    if spacing == "trailing":
        return _spaced(num_train_steps, num_inference_steps, spacing, 0)
    return _spaced(num_train_steps, num_inference_steps + 1, spacing, steps_offset)[:-1]


@torch.no_grad()
def dpmpp_2m_sample(model: Model, schedule: NoiseSchedule, x_T: torch.Tensor, timesteps: Sequence[int],
                    prediction_type: str = "eps", keep_trajectory: bool = False):
    """DPM-Solver++(2M) (Lu et al. 2022, Alg. 2): a second-order multistep solver on the data
    prediction x0_hat, as diffusers' DPMSolverMultistepScheduler with its defaults (solver_order=2,
    "dpmsolver++", "midpoint", lower_order_final=True, final_sigmas_type="zero").

    The first step is first order (DDIM), the middle ones second order, reusing the previous
    x0_hat; the last lands on sigma = 0, where the update is x0_hat itself.

    Args:
        model: ``model(x_t, t)`` -> a prediction of ``prediction_type`` ("eps", "x0" or "v").
        x_T: the starting noise, (B, ...); its device and dtype are used throughout.
        timesteps: noisiest first, e.g. ``dpm_solver_timesteps(1000, 20)``.
        keep_trajectory: also return the states (N + 1, B, ...), x_T first.
    """
    check_prediction_type(prediction_type)
    steps = _as_steps(timesteps, schedule.num_steps)
    x, kept = x_T, [x_T]
    x0_prev, h_prev = None, None
    for i, t in enumerate(steps):
        a_bar = _alpha_bar(schedule, t)
        x0_hat = pred_to_x0(model(x, _batch(t, x)).to(x.dtype), x, a_bar, prediction_type)
        if i == len(steps) - 1:
            x = x0_hat  # the first-order update with sigma_next = 0 (h = inf) returns x0_hat
        else:
            a_next = _alpha_bar(schedule, steps[i + 1])
            alpha_s, sigma_s = a_bar ** 0.5, (1 - a_bar) ** 0.5
            alpha_t, sigma_t = a_next ** 0.5, (1 - a_next) ** 0.5
            h = math.log(alpha_t / sigma_t) - math.log(alpha_s / sigma_s)  # lambda_t - lambda_s
            if x0_prev is None:
                D = x0_hat  # first order: DPM-Solver++(1), which is DDIM
            else:
                r = h_prev / h
                D = (1 + 1 / (2 * r)) * x0_hat - (1 / (2 * r)) * x0_prev  # DPM-Solver++ Alg. 2
            x = (sigma_t / sigma_s) * x - alpha_t * math.expm1(-h) * D  # DPM-Solver++ Alg. 2
            h_prev = h
        x0_prev = x0_hat
        kept.append(x)
    return (x, torch.stack(kept)) if keep_trajectory else x


def _sigmas(schedule: NoiseSchedule, steps: list[int]) -> list[float]:
    """EDM's sigma = sqrt((1 - alpha_bar) / alpha_bar) at each step, then 0 at the data end."""
    return [((1 - a) / a) ** 0.5 for a in (_alpha_bar(schedule, t) for t in steps)] + [0.0]


def _denoise(model: Model, schedule: NoiseSchedule, x: torch.Tensor, t: int, prediction_type: str) -> torch.Tensor:
    """D(x; sigma_t): x0_hat from x = x_t / sqrt(alpha_bar_t), via the model at x_t (diffusers'
    ``scale_model_input`` divides by sqrt(sigma^2 + 1), the same thing)."""
    a_bar = _alpha_bar(schedule, t)
    x_t = x * a_bar ** 0.5
    return pred_to_x0(model(x_t, _batch(t, x_t)).to(x.dtype), x_t, a_bar, prediction_type)


@torch.no_grad()
def euler_sample(model: Model, schedule: NoiseSchedule, x_T: torch.Tensor, timesteps: Sequence[int],
                 prediction_type: str = "eps", keep_trajectory: bool = False):
    """Euler's method on the probability-flow ODE dx/dsigma = (x - D(x; sigma)) / sigma, as
    diffusers' EulerDiscreteScheduler (no churn). Arguments as ``dpmpp_2m_sample``; N model calls."""
    check_prediction_type(prediction_type)
    steps = _as_steps(timesteps, schedule.num_steps)
    sigmas = _sigmas(schedule, steps)
    x = x_T * (1 + sigmas[0] ** 2) ** 0.5  # x = x_t / sqrt(alpha_bar): N(x0, sigma^2 I) given x0
    kept = [x_T]
    for i, t in enumerate(steps):
        d = (x - _denoise(model, schedule, x, t, prediction_type)) / sigmas[i]  # EDM Alg. 1, line 4
        x = x + (sigmas[i + 1] - sigmas[i]) * d  # EDM Alg. 1, line 5: the Euler step
        kept.append(x / (1 + sigmas[i + 1] ** 2) ** 0.5)  # back to x_t
    return (x, torch.stack(kept)) if keep_trajectory else x


@torch.no_grad()
def heun_sample(model: Model, schedule: NoiseSchedule, x_T: torch.Tensor, timesteps: Sequence[int],
                prediction_type: str = "eps", keep_trajectory: bool = False):
    """Heun's method (EDM Alg. 1) on the same ODE, as diffusers' HeunDiscreteScheduler: an Euler
    step, then the trapezoid rule with the slope at its end, except for the last step to sigma = 0,
    which stays Euler. 2N - 1 model calls; diffusers lists them as N steps with the last N - 1
    repeated (t_0, t_1, t_1, t_2, t_2, ...). Arguments as ``dpmpp_2m_sample``."""
    check_prediction_type(prediction_type)
    steps = _as_steps(timesteps, schedule.num_steps)
    sigmas = _sigmas(schedule, steps)
    x = x_T * (1 + sigmas[0] ** 2) ** 0.5  # x = x_t / sqrt(alpha_bar)
    kept = [x_T]
    for i, t in enumerate(steps):
        d = (x - _denoise(model, schedule, x, t, prediction_type)) / sigmas[i]  # EDM Alg. 1, line 4
        x_next = x + (sigmas[i + 1] - sigmas[i]) * d  # EDM Alg. 1, line 5
        if i + 1 < len(steps):  # sigma_{i+1} > 0: correct with the slope at the end (lines 6-8)
            d_next = (x_next - _denoise(model, schedule, x_next, steps[i + 1], prediction_type)) / sigmas[i + 1]
            x_next = x + (sigmas[i + 1] - sigmas[i]) * (0.5 * d + 0.5 * d_next)  # EDM Alg. 1, line 8
        x = x_next
        kept.append(x / (1 + sigmas[i + 1] ** 2) ** 0.5)  # back to x_t
    return (x, torch.stack(kept)) if keep_trajectory else x
