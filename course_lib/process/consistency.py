"""Consistency models (CM, Song et al. 2023, arXiv 2303.01469) in the latent-consistency form of LCM
(Luo et al. 2023, arXiv 2310.04378): the consistency function built from an eps-prediction network,
its boundary scalings, the timesteps LCM samples at, and multi-step LCM sampling.

    c_skip(t), c_out(t)                      the boundary scalings, as diffusers' LCMScheduler computes them
    consistency_output(schedule, eps, x_t, t)    f(x_t, t) = c_skip x_t + c_out x0_hat (LCM Eq. 9)
    lcm_grid(T, original_inference_steps)    LCM's skipping-step grid 19, 39, ..., 999 (k = 20)
    lcm_timesteps(T, N, original_inference_steps)    LCMScheduler.set_timesteps(N)'s steps
    lcm_sample(model, schedule, z_T, num_steps, w, tokens, generator)   multi-step sampling (LCM Alg. 3)

Time convention: integer steps t in {0, ..., T-1}, t = 0 nearest the data (see process/schedules.py).
The boundary sits at t = 0: c_skip(0) = 1 and c_out(0) = 0 exactly, so f(x, 0) = x (CM Eq. 5's
boundary condition, with CM's epsilon placed at step 0, whose noise level sqrt(1 - alpha_bar_0) = 0.01 is
near but not exactly zero: the approximation LCM makes). Above it the scalings switch fast:
c_skip(1) = 0.0025 with LCM's timestep_scaling = 10, so for t >= 1 the function is nearly x0_hat.

Names -> symbols:
    x_t, z_t     x_t, z_t     the noised (latent) sample at step t
    eps          epsilon_hat  the network's noise prediction at (x_t, t)
    x0_hat       hat x_0      (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t) (DDPM Eq. 4 solved for x0)
    c_skip       c_skip(t)    sigma_data^2 / ((s t)^2 + sigma_data^2)
    c_out        c_out(t)     s t / sqrt((s t)^2 + sigma_data^2)
    sigma_data   sigma_data   0.5, the data's standard deviation assumed by CM (App. C) and LCM
    s            timestep_scaling   10: LCM's factor on the integer step, which sharpens the switch
    f            f_theta(x_t, t)    the consistency function: maps any x_t on a PF-ODE trajectory to its origin
    w            w            the guidance scale of the course (``guidance.guided_eps``): 1 conditional
"""

from __future__ import annotations

from typing import Callable

import torch

from .diffusion import eps_to_x0, gather
from .schedules import NoiseSchedule

SIGMA_DATA = 0.5  # CM App. C; LCMScheduler's sigma_data


TIMESTEP_SCALING = 10.0  # LCMScheduler's timestep_scaling


# model(z_t, t, tokens, w) -> eps: a guidance-conditioned student (models.lcm.GuidanceConditionedDenoiser)
ConsistencyModel = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def c_skip(t: torch.Tensor | int | float, sigma_data: float = SIGMA_DATA,
           timestep_scaling: float = TIMESTEP_SCALING) -> torch.Tensor | float:
    """sigma_data^2 / ((s t)^2 + sigma_data^2): 1 at t = 0 (CM Eq. 5's boundary), about 0 from t = 1 on.
    ``t``: an int (a float back, as LCMScheduler's) or a tensor of steps (float64 back)."""
    s_t = _scaled(t, timestep_scaling)
    return sigma_data ** 2 / (s_t ** 2 + sigma_data ** 2)  # LCMScheduler.get_scalings_for_boundary_condition_discrete


def c_out(t: torch.Tensor | int | float, sigma_data: float = SIGMA_DATA,
          timestep_scaling: float = TIMESTEP_SCALING) -> torch.Tensor | float:
    """s t / sqrt((s t)^2 + sigma_data^2): 0 at t = 0, about 1 from t = 1 on."""
    s_t = _scaled(t, timestep_scaling)
    return s_t / (s_t ** 2 + sigma_data ** 2) ** 0.5  # LCMScheduler.get_scalings_for_boundary_condition_discrete


def _scaled(t, timestep_scaling: float):
    if isinstance(t, torch.Tensor):
        return t.to(torch.float64) * timestep_scaling  # float64 whatever t's dtype (long steps)
    return float(t) * timestep_scaling


def consistency_output(schedule: NoiseSchedule, eps: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor | int,
                       sigma_data: float = SIGMA_DATA, timestep_scaling: float = TIMESTEP_SCALING) -> torch.Tensor:
    """f(x_t, t) = c_skip(t) x_t + c_out(t) x0_hat(x_t, t) from an eps prediction (LCM Eq. 9).

    Args:
        eps: the network's output at (x_t, t), x_t's shape (B, ...).
        t: (B,) long steps or an int, in [0, T).
    Returns f, x_t's shape and dtype: exactly x_t where t = 0.
    """
    a_bar = gather(schedule.alpha_bar, t, x_t)  # (B, 1, ..., 1) in x_t's dtype
    x0_hat = eps_to_x0(eps, x_t, a_bar)  # DDPM Eq. 4 solved for x0
    t64 = torch.as_tensor(t)
    skip = _broadcast(c_skip(t64, sigma_data, timestep_scaling), x_t)
    out = _broadcast(c_out(t64, sigma_data, timestep_scaling), x_t)
    return skip * x_t + out * x0_hat  # LCM Eq. 9 (CM Eq. 5 with F = x0_hat)


def _broadcast(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A scalar or (B,) float64 tensor as (B, 1, ..., 1) in like's dtype and device."""
    values = values.to(device=like.device, dtype=like.dtype)
    return values if values.ndim == 0 else values.reshape(-1, *([1] * (like.ndim - 1)))


def lcm_grid(num_train_steps: int = 1000, original_inference_steps: int = 50) -> torch.Tensor:
    """LCM's skipping-step grid t_n = (n + 1) k - 1 for n = 0..N-1 with k = T // N (LCM Sec. 4.3):
    19, 39, ..., 999 for T = 1000, N = 50; (N,) long, increasing. The distillation's and the sampler's steps."""
    if not 1 <= original_inference_steps <= num_train_steps:
        raise ValueError(f"original_inference_steps must lie in [1, {num_train_steps}], got {original_inference_steps}")
    k = num_train_steps // original_inference_steps  # the skipping interval (LCM Sec. 4.3)
    return torch.arange(1, original_inference_steps + 1) * k - 1
