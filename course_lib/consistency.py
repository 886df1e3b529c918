"""Consistency models (CM, Song et al. 2023, arXiv 2303.01469) in the latent-consistency form of LCM
(Luo et al. 2023, arXiv 2310.04378): the consistency function built from an eps-prediction network,
its boundary scalings, the timesteps LCM samples at, and multi-step LCM sampling.

    c_skip(t), c_out(t)                      the boundary scalings, as diffusers' LCMScheduler computes them
    consistency_output(schedule, eps, x_t, t)    f(x_t, t) = c_skip x_t + c_out x0_hat (LCM Eq. 9)
    lcm_grid(T, original_inference_steps)    LCM's skipping-step grid 19, 39, ..., 999 (k = 20)
    lcm_timesteps(T, N, original_inference_steps)    LCMScheduler.set_timesteps(N)'s steps
    lcm_sample(model, schedule, z_T, num_steps, w, tokens, generator)   multi-step sampling (LCM Alg. 3)

Time convention: integer steps t in {0, ..., T-1}, t = 0 nearest the data (see schedules.py).
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

from typing import Callable, Sequence

import torch

from .diffusion import eps_to_x0, gather
from .schedules import NoiseSchedule
from .text_guidance import expand_tokens

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


def lcm_timesteps(num_train_steps: int, num_inference_steps: int, original_inference_steps: int = 50) -> torch.Tensor:
    """The N steps LCM sampling visits, noisiest first: N of the grid's steps evenly spaced by index
    (floor(i * N_orig / N), from the noisy end), as ``LCMScheduler.set_timesteps(N)``. (N,) long."""
    if not isinstance(num_inference_steps, int) or not 1 <= num_inference_steps <= original_inference_steps:
        raise ValueError(f"num_inference_steps must be an int in [1, {original_inference_steps}] "
                         f"(original_inference_steps), got {num_inference_steps!r}")
    grid = lcm_grid(num_train_steps, original_inference_steps).flip(0)  # 999, 979, ..., 19
    step = original_inference_steps / num_inference_steps  # as numpy's linspace(0, N_orig, N, endpoint=False)
    index = (torch.arange(num_inference_steps, dtype=torch.float64) * step).floor().long()
    return grid[index]


def _expand_w(w: torch.Tensor, batch: int) -> torch.Tensor:
    """A scalar guidance scale, or one per sample, as (batch,)."""
    w = w.reshape(-1)
    if w.numel() not in (1, batch):
        raise ValueError(f"w must be a float or have shape ({batch},), got {tuple(w.shape)}")
    return w.expand(batch)


@torch.no_grad()
def lcm_sample(model: ConsistencyModel, schedule: NoiseSchedule, z_T: torch.Tensor, num_steps: int,
               w: float | torch.Tensor, tokens: torch.Tensor, generator: torch.Generator | None = None, *,
               original_inference_steps: int = 50, timesteps: Sequence[int] | None = None,
               keep_trajectory: bool = False):
    """Multi-step latent consistency sampling (LCM Alg. 3; CM Alg. 1): at each of the N steps
    t_0 > t_1 > ... (``lcm_timesteps``) jump to the trajectory's origin with f, then, except after
    the last, noise that estimate back up to the next step with fresh noise (DDPM Eq. 4). One network
    call per step; N = 1 is one-step generation f(z_T, t_0). Step for step ``LCMScheduler.step``.

    Args:
        model: ``model(z_t, t, tokens, w) -> eps`` with t (B,) long and w (B,).
        z_T: the starting noise (B, C, h, w); its device and dtype are used throughout.
        w: the guidance scale the student was distilled for (a float or (B,)).
        tokens: the prompt's tokens, (L,) or (B, L).
        generator: draws the N - 1 re-noising draws, one torch.randn of z's shape per step.
        timesteps: custom steps (noisiest first) in place of ``lcm_timesteps``.
        keep_trajectory: also return the denoised estimates f at every step (N, B, ...).
    """
    steps = [int(t) for t in (timesteps if timesteps is not None else
                              lcm_timesteps(schedule.num_steps, num_steps, original_inference_steps))]
    B = z_T.shape[0]
    tokens = expand_tokens(tokens.to(z_T.device), B)  # (B, L)
    w = _expand_w(torch.as_tensor(w, dtype=torch.float32, device=z_T.device), B)  # (B,)
    z, denoised_all = z_T, []
    for i, t in enumerate(steps):
        t_batch = torch.full((B,), t, dtype=torch.long, device=z.device)
        eps = model(z, t_batch, tokens, w).to(z.dtype)
        denoised = consistency_output(schedule, eps, z, t_batch)  # LCM Alg. 3: f_theta(z_t, w, c, t)
        denoised_all.append(denoised)
        if i + 1 < len(steps):  # LCM Alg. 3: z_{t_next} = sqrt(alpha_bar) f + sqrt(1 - alpha_bar) eps, fresh eps
            a_next = float(schedule.alpha_bar[steps[i + 1]])
            noise = torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)
            z = a_next ** 0.5 * denoised + (1 - a_next) ** 0.5 * noise  # DDPM Eq. 4
        else:
            z = denoised
    return (z, torch.stack(denoised_all)) if keep_trajectory else z
