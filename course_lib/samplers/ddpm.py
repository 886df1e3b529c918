"""Samplers: plain functions with the loop in view. Each takes the model as an argument.

Time convention: integer steps t in {0, ..., T-1}, t = 0 nearest the data; sampling runs
t = T-1 down to 0 and returns x at "step -1", i.e. x0 (see process/schedules.py).

Names -> symbols:
    x_t        x_t              current sample
    eps        epsilon_theta    the model's noise prediction
    x0_hat     hat x_0          predicted clean sample (DDPM Eq. 15)
    mean       mu_tilde_t       posterior mean of q(x_{t-1} | x_t, x0) (DDPM Eq. 7)
    sigma      sigma_t          standard deviation of the reverse step
"""

from __future__ import annotations

from typing import Callable

import torch

from ..process.diffusion import check_prediction_type, check_timesteps, eps_to_score, gather, pred_to_x0, q_posterior
from ..process.schedules import NoiseSchedule

Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def ddpm_step(schedule: NoiseSchedule, eps: torch.Tensor, t: int, x_t: torch.Tensor,
              noise: torch.Tensor, variance: str = "small", clip_x0: float | None = None,
              prediction_type: str = "eps") -> torch.Tensor:
    """One ancestral step x_t -> x_{t-1} of DDPM (Algorithm 2), for the whole batch at step t.

    Args:
        eps: the model's output, same shape as x_t: a noise prediction, or an x0 / v prediction when
            ``prediction_type`` says so ("x0", "v"; diffusers' "sample", "v_prediction").
        t: the current integer step, 0 <= t < T.
        noise: standard Gaussian noise of x_t's shape (ignored at t = 0, where no noise is added).
        variance: "small" uses the posterior variance beta_tilde_t, "large" uses beta_t (DDPM Sec. 3.2).
        clip_x0: if given, clamp the predicted x0 to [-clip_x0, clip_x0] (images live in [-1, 1]).
    """
    check_prediction_type(prediction_type)
    if variance not in ("small", "large"):
        raise ValueError(f"variance must be 'small' (beta_tilde_t) or 'large' (beta_t), got {variance!r}")
    if eps.shape != x_t.shape or noise.shape != x_t.shape:
        raise ValueError(f"eps, noise and x_t must share a shape; got {tuple(eps.shape)}, "
                         f"{tuple(noise.shape)}, {tuple(x_t.shape)}")
    if not isinstance(t, int):
        raise TypeError(f"t must be a Python int (one step for the whole batch), got {type(t).__name__}")
    check_timesteps(t, x_t.shape[0], schedule.num_steps)
    a_bar = gather(schedule.alpha_bar, t, x_t)
    x0_hat = pred_to_x0(eps, x_t, a_bar, prediction_type)  # DDPM Eq. 15 for an eps prediction
    if clip_x0 is not None:
        x0_hat = x0_hat.clamp(-clip_x0, clip_x0)
    mean, posterior_var = q_posterior(schedule, x0_hat, x_t, t)  # DDPM Eqs. 6-7 with x0 -> x0_hat
    if t == 0:
        return mean
    # "small": the posterior variance beta_tilde_t; "large": beta_t (DDPM Sec. 3.2)
    # (beta_t as 1 - alpha_bar_t / alpha_bar_{t-1}, as diffusers computes it)
    var = posterior_var.clamp(min=1e-20) if variance == "small" else 1 - a_bar / gather(schedule.alpha_bar, t - 1, x_t)
    return mean + var.sqrt() * noise  # DDPM Algorithm 2, line 4


@torch.no_grad()
def ddpm_sample(model: Model, schedule: NoiseSchedule, x_T: torch.Tensor,
                generator: torch.Generator | None = None, variance: str = "small",
                clip_x0: float | None = None, keep_every: int | None = None, prediction_type: str = "eps"):
    """DDPM ancestral sampling (Algorithm 2) from x_T ~ N(0, I) down to x0.

    Args:
        model: ``model(x_t, t)`` with t a (B,) long tensor of steps, returns eps of x_t's shape (or x0 / v,
            as ``prediction_type`` says: "eps", "x0" or "v").
        x_T: the starting noise, (B, ...); its device and dtype are used throughout.
        generator: for the per-step noise (on x_T's device); same generator state, same samples.
        keep_every: None (the default) returns x0 alone; an int k >= 1 also returns x_T and the states
            after every step t with t % k == 0 (t = 0, the last, included), stacked as (K, B, ...),
            for plots and animations.
    """
    check_prediction_type(prediction_type)
    if keep_every is not None and (isinstance(keep_every, bool) or not isinstance(keep_every, int) or keep_every < 1):
        raise ValueError(f"keep_every must be None (return x0 alone) or an int >= 1 (also return the states "
                         f"every keep_every steps), got {keep_every!r}")
    x = x_T
    kept = [x]
    for t in reversed(range(schedule.num_steps)):
        t_batch = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
        eps = model(x, t_batch)
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        x = ddpm_step(schedule, eps.to(x.dtype), t, x, noise, variance=variance, clip_x0=clip_x0,
                      prediction_type=prediction_type)
        if keep_every is not None and t % keep_every == 0:
            kept.append(x)
    return (x, torch.stack(kept)) if keep_every is not None else x


@torch.no_grad()
def annealed_langevin_sample(model: Model, schedule: NoiseSchedule, x_T: torch.Tensor,
                             levels: list[int], steps_per_level: int = 10, step_scale: float = 0.1,
                             generator: torch.Generator | None = None) -> torch.Tensor:
    """Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1) with the score read off an
    eps-model: score(x, t) = -eps(x, t) / sqrt(1 - alpha_bar_t).

    At each level t (from noisy to clean), run ``steps_per_level`` Langevin steps
        x <- x + (a/2) score(x, t) + sqrt(a) z,   a = step_scale * (1 - alpha_bar_t)
    (the step size proportional to the level's noise variance, as in their Algorithm 1).

    Args:
        levels: integer steps in decreasing order, e.g. [999, 900, ..., 0].
    """
    if any(b >= a for a, b in zip(levels, levels[1:])):
        raise ValueError(f"levels must be strictly decreasing integer steps, got {levels}")
    x = x_T
    for t in levels:
        check_timesteps(t, x.shape[0], schedule.num_steps)
        t_batch = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
        a = step_scale * (1 - gather(schedule.alpha_bar, t, x))  # step size ~ sigma_t^2
        for _ in range(steps_per_level):
            score = eps_to_score(schedule, model(x, t_batch).to(x.dtype), t_batch)
            z = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            x = x + 0.5 * a * score + a.sqrt() * z  # Song & Ermon 2019, Alg. 1 line 6
    return x
