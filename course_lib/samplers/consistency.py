"""Sampling a consistency model: LCM's multi-step sampler (LCM, Luo et al. 2023, arXiv 2310.04378,
Alg. 3) on the skipping-step grid. The consistency function itself: ``course_lib.process.consistency``.
"""

from __future__ import annotations

from typing import Sequence

import torch

from ..process.consistency import ConsistencyModel, consistency_output, lcm_grid
from ..process.schedules import NoiseSchedule
from ..process.text_guidance import expand_tokens
from .ddim import _as_steps


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
        timesteps: custom steps in place of ``lcm_timesteps``: integers, strictly decreasing (noisiest
            first), in [0, T), as many as ``num_steps``.
        keep_trajectory: also return the denoised estimates f at every step (N, B, ...).
    """
    steps = _as_steps(timesteps if timesteps is not None else
                      lcm_timesteps(schedule.num_steps, num_steps, original_inference_steps), schedule.num_steps)
    if len(steps) != num_steps:
        raise ValueError(f"timesteps lists {len(steps)} steps but num_steps is {num_steps!r}; "
                         f"pass num_steps=len(timesteps)")
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
