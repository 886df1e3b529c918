"""The forward process q(x_t | x0) and the training loss.

Time convention: integer steps t in {0, ..., T-1}, t = 0 nearest the data (see schedules.py).

Names -> symbols:
    x0         x_0        a clean sample
    x_t        x_t        the noised sample at step t
    eps        epsilon    standard Gaussian noise, x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps
    alpha_bar  alpha_bar_t
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .schedules import NoiseSchedule


def gather(values: torch.Tensor, t: torch.Tensor | int, like: torch.Tensor) -> torch.Tensor:
    """values[t] shaped to broadcast against ``like``: (B,) -> (B, 1, ..., 1), in like's dtype/device.

    Schedules stay float64 on the CPU; indexing happens there, the cast happens at use.
    """
    t = torch.as_tensor(t).cpu()
    out = values[t].to(device=like.device, dtype=like.dtype)
    if out.ndim == 0:
        return out
    return out.reshape(out.shape[0], *([1] * (like.ndim - 1)))  # (B, 1, ..., 1)


def check_timesteps(t: torch.Tensor | int, batch: int, num_steps: int) -> None:
    """Raise a clear error unless t is integer steps in [0, num_steps), scalar or of shape (batch,)."""
    t = torch.as_tensor(t)
    if t.is_floating_point() or t.dtype == torch.bool or t.is_complex():
        raise TypeError(f"t must hold integer steps (torch.long), got dtype {t.dtype}")
    if t.ndim > 1 or (t.ndim == 1 and t.shape[0] != batch):
        raise ValueError(f"t must be a scalar or have shape ({batch},) to match the batch; got {tuple(t.shape)}")
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= num_steps):
        raise ValueError(f"t must lie in [0, {num_steps - 1}] (integer steps, 0 = least noisy); "
                         f"got values from {int(t.min())} to {int(t.max())}")


def add_noise(schedule: NoiseSchedule, x0: torch.Tensor, t: torch.Tensor | int,
              noise: torch.Tensor) -> torch.Tensor:
    """Sample x_t ~ q(x_t | x0) in closed form (DDPM Eq. 4).

    Args:
        x0: clean data, (B, ...) floating point.
        t: integer steps, (B,) long or a Python int for the whole batch.
        noise: eps, same shape and dtype as x0.
    Returns:
        x_t, same shape as x0.
    """
    if not x0.is_floating_point():
        raise TypeError(f"x0 must be a floating-point tensor, got {x0.dtype}")
    if noise.shape != x0.shape or noise.dtype != x0.dtype:
        raise ValueError(f"noise must match x0: expected shape {tuple(x0.shape)} and dtype {x0.dtype}, "
                         f"got {tuple(noise.shape)} and {noise.dtype}")
    check_timesteps(t, x0.shape[0], schedule.num_steps)
    a_bar = gather(schedule.alpha_bar, t, x0)
    return a_bar.sqrt() * x0 + (1 - a_bar).sqrt() * noise  # DDPM Eq. 4


class EpsilonLoss:
    """DDPM's simple loss (Eq. 14): E_{t, x0, eps} || eps - eps_theta(x_t, t) ||^2,
    with t uniform over {0, ..., T-1}. Called as ``loss(model, x0)``; ``model(x_t, t)``
    predicts eps."""

    def __init__(self, schedule: NoiseSchedule):
        self.schedule = schedule

    def __call__(self, model: torch.nn.Module, x0: torch.Tensor,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        B = x0.shape[0]
        t = torch.randint(0, self.schedule.num_steps, (B,), device=x0.device, generator=generator)
        noise = torch.randn(x0.shape, device=x0.device, dtype=x0.dtype, generator=generator)
        x_t = add_noise(self.schedule, x0, t, noise)
        return F.mse_loss(model(x_t, t).float(), noise.float())  # DDPM Eq. 14


def eps_to_score(schedule: NoiseSchedule, eps: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
    """The score grad_x log q(x_t) from a noise prediction: -eps / sqrt(1 - alpha_bar_t)
    (Song et al. 2021, Eq. 11 read for the VP process; Tweedie's formula)."""
    check_timesteps(t, eps.shape[0], schedule.num_steps)
    return -eps / (1 - gather(schedule.alpha_bar, t, eps)).sqrt()
