"""The forward process q(x_t | x0), the three prediction targets and the training losses.

Time convention: integer steps t in {0, ..., T-1}, t = 0 nearest the data (see process/schedules.py).
The target conversions take alpha_bar_t itself (``gather(schedule.alpha_bar, t, x_t)``), so that
samplers can also use them at "step -1", the data end, where alpha_bar = 1.

Names -> symbols:
    x0         x_0        a clean sample
    x_t        x_t        the noised sample at step t
    mean, var  mu_tilde_t, beta_tilde_t   mean and variance of the posterior q(x_{t-1} | x_t, x0) (DDPM Eq. 7)
    eps        epsilon    standard Gaussian noise, x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps
    v          v_t        the velocity target sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x0 (Salimans & Ho 2022)
    alpha_bar  alpha_bar_t
    snr        SNR_t      alpha_bar_t / (1 - alpha_bar_t)
    gamma      gamma      the Min-SNR cap (Hang et al. 2023)
"""

from __future__ import annotations

from typing import Callable

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


def q_posterior(schedule: NoiseSchedule, x0: torch.Tensor, x_t: torch.Tensor,
                t: torch.Tensor | int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of the forward posterior q(x_{t-1} | x_t, x0) (DDPM Eqs. 6-7).

    Args:
        x0, x_t: (B, ...) floating point, same shape.
        t: integer steps, (B,) long or a Python int. At t = 0 the "previous" state is x0 itself:
            alpha_bar_{-1} = 1, so the mean is x0 and the variance 0.
    Returns:
        (mean, var): mean of x_t's shape; var (beta_tilde_t) broadcastable to it, (B, 1, ..., 1).
    """
    if x0.shape != x_t.shape:
        raise ValueError(f"x0 and x_t must share a shape; got {tuple(x0.shape)} and {tuple(x_t.shape)}")
    check_timesteps(t, x_t.shape[0], schedule.num_steps)
    t = torch.as_tensor(t)
    a_bar = gather(schedule.alpha_bar, t, x_t)
    a_bar_prev = gather(torch.cat([torch.ones(1, dtype=torch.float64), schedule.alpha_bar[:-1]]), t, x_t)
    beta_t = 1 - a_bar / a_bar_prev
    mean = (a_bar_prev.sqrt() * beta_t / (1 - a_bar)) * x0 \
        + ((1 - beta_t).sqrt() * (1 - a_bar_prev) / (1 - a_bar)) * x_t  # DDPM Eq. 7, mu_tilde_t
    var = (1 - a_bar_prev) / (1 - a_bar) * beta_t  # DDPM Eq. 7, beta_tilde_t
    return mean, var


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


# ---- prediction targets: eps, x0 and v, and the conversions between them ----------------------

PREDICTION_TYPES = ("eps", "x0", "v")


def check_prediction_type(kind: str, name: str = "prediction_type") -> None:
    """Raise a clear ValueError unless ``kind`` is one of PREDICTION_TYPES."""
    if kind not in PREDICTION_TYPES:
        raise ValueError(f"Unknown {name} {kind!r}; expected one of 'eps', 'x0', 'v' "
                         "(diffusers calls them 'epsilon', 'sample', 'v_prediction').")


def eps_to_x0(eps: torch.Tensor, x_t: torch.Tensor, alpha_bar: torch.Tensor | float) -> torch.Tensor:
    """x0 from a noise prediction. alpha_bar broadcasts against x_t: (B, 1, ..., 1) or a scalar."""
    return (x_t - (1 - alpha_bar) ** 0.5 * eps) / alpha_bar ** 0.5  # DDPM Eq. 15 (Eq. 4 solved for x0)


def x0_to_eps(x0: torch.Tensor, x_t: torch.Tensor, alpha_bar: torch.Tensor | float) -> torch.Tensor:
    """eps from a clean-sample prediction (undefined at alpha_bar = 1, where x_t holds no noise)."""
    return (x_t - alpha_bar ** 0.5 * x0) / (1 - alpha_bar) ** 0.5  # DDPM Eq. 4 solved for eps


def velocity(x0: torch.Tensor, eps: torch.Tensor, alpha_bar: torch.Tensor | float) -> torch.Tensor:
    """The v target: v = sqrt(alpha_bar) eps - sqrt(1 - alpha_bar) x0 (diffusers' ``get_velocity``)."""
    return alpha_bar ** 0.5 * eps - (1 - alpha_bar) ** 0.5 * x0  # Salimans & Ho 2022, Sec. 4


def v_to_x0(v: torch.Tensor, x_t: torch.Tensor, alpha_bar: torch.Tensor | float) -> torch.Tensor:
    """x0 = sqrt(alpha_bar) x_t - sqrt(1 - alpha_bar) v (v and x_t are a rotation of (eps, x0))."""
    return alpha_bar ** 0.5 * x_t - (1 - alpha_bar) ** 0.5 * v  # Salimans & Ho 2022, Sec. 4


def v_to_eps(v: torch.Tensor, x_t: torch.Tensor, alpha_bar: torch.Tensor | float) -> torch.Tensor:
    """eps = sqrt(1 - alpha_bar) x_t + sqrt(alpha_bar) v."""
    return (1 - alpha_bar) ** 0.5 * x_t + alpha_bar ** 0.5 * v  # Salimans & Ho 2022, Sec. 4


def pred_to_x0(pred: torch.Tensor, x_t: torch.Tensor, alpha_bar: torch.Tensor | float,
               kind: str = "eps") -> torch.Tensor:
    """The model's prediction of kind "eps", "x0" or "v", read as a prediction of x0."""
    check_prediction_type(kind)
    if kind == "eps":
        return eps_to_x0(pred, x_t, alpha_bar)
    return v_to_x0(pred, x_t, alpha_bar) if kind == "v" else pred


def pred_to_eps(pred: torch.Tensor, x_t: torch.Tensor, alpha_bar: torch.Tensor | float,
                kind: str = "eps") -> torch.Tensor:
    """The model's prediction of kind "eps", "x0" or "v", read as a prediction of eps."""
    check_prediction_type(kind)
    if kind == "x0":
        return x0_to_eps(pred, x_t, alpha_bar)
    return v_to_eps(pred, x_t, alpha_bar) if kind == "v" else pred


def clip_x0_hat(x0_hat: torch.Tensor, clip_sample: float | None = None,
                dynamic_threshold: tuple[float, float] | None = None) -> torch.Tensor:
    """The predicted x0 clipped as diffusers' schedulers do, when asked; unchanged when both are None.

    ``dynamic_threshold=(ratio, max_value)``: Imagen's dynamic thresholding (Saharia et al. 2022, Sec. 2.3),
    per example s = the ``ratio`` quantile of |x0_hat| clamped to [1, max_value], then x0_hat clamped to
    [-s, s] and divided by s (diffusers' ``thresholding=True``; with max_value = 1 it is clipping to [-1, 1]).
    Otherwise ``clip_sample=c`` clamps to [-c, c] (diffusers' ``clip_sample_range``). x0_hat: (B, ...).
    """
    if dynamic_threshold is not None:
        ratio, max_value = dynamic_threshold
        if not 0.0 < ratio <= 1.0 or max_value < 1.0:
            raise ValueError(f"dynamic_threshold must be (ratio in (0, 1], max_value >= 1), e.g. (0.995, 1.5); "
                             f"got {dynamic_threshold!r}")
        flat = x0_hat.flatten(1)  # (B, D)
        upcast = flat if flat.dtype in (torch.float32, torch.float64) else flat.float()  # quantile needs it
        s = torch.quantile(upcast.abs(), ratio, dim=1).clamp(1.0, max_value)[:, None]  # Imagen Sec. 2.3
        return (upcast.clamp(-s, s) / s).to(x0_hat.dtype).reshape(x0_hat.shape)
    if clip_sample is not None:
        if clip_sample <= 0:
            raise ValueError(f"clip_sample must be a positive range c (x0_hat clamped to [-c, c]), got {clip_sample}")
        return x0_hat.clamp(-clip_sample, clip_sample)
    return x0_hat


# ---- losses for each target, and loss weightings ------------------------------------------------

def signal_to_noise(alpha_bar: torch.Tensor) -> torch.Tensor:
    """SNR_t = alpha_bar_t / (1 - alpha_bar_t), the ratio of signal to noise variance in x_t."""
    return alpha_bar / (1 - alpha_bar)


def x0_error_factor(snr: torch.Tensor, target: str) -> torch.Tensor:
    """How a squared error in ``target`` compares with the squared error of the implied x0 at the
    same x_t: ||eps err||^2 = SNR ||x0 err||^2, ||v err||^2 = (SNR + 1) ||x0 err||^2."""
    check_prediction_type(target, "target")
    if target == "eps":
        return snr
    return snr + 1 if target == "v" else torch.ones_like(snr)


def min_snr_weight(snr: torch.Tensor, target: str = "eps", gamma: float = 5.0) -> torch.Tensor:
    """Min-SNR-gamma loss weights (Hang et al. 2023), (B,) from SNR_t of shape (B,).

    Weighted in x0 space by min(SNR, gamma); on the target's own loss that is
    min(SNR, gamma) / SNR for eps, min(SNR, gamma) / (SNR + 1) for v and min(SNR, gamma) for x0.
    """
    if gamma <= 0:
        raise ValueError(f"gamma must be > 0, got {gamma}")
    return snr.clamp(max=gamma) / x0_error_factor(snr, target)  # Hang et al. 2023: w_t = min(SNR_t, gamma)


class PredictionLoss:
    """E_{t, x0, eps} w_t || target - model(x_t, t) ||^2 with t uniform over {0, ..., T-1} and
    target "eps" (DDPM Eq. 14), "x0" or "v" (Salimans & Ho 2022). Called as ``loss(model, x0)``.

    ``weight(snr)`` gives w_t, 1 here; a variant overrides it (see MinSNRLoss). With w_t = 1 and
    target "eps" this is EpsilonLoss, draw for draw under the same generator.
    """

    def __init__(self, schedule: NoiseSchedule, target: str = "eps"):
        check_prediction_type(target, "target")
        self.schedule, self.target = schedule, target

    def weight(self, snr: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(snr)

    def __call__(self, model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x0: torch.Tensor,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        B = x0.shape[0]
        t = torch.randint(0, self.schedule.num_steps, (B,), device=x0.device, generator=generator)
        noise = torch.randn(x0.shape, device=x0.device, dtype=x0.dtype, generator=generator)
        x_t = add_noise(self.schedule, x0, t, noise)
        a_bar = gather(self.schedule.alpha_bar, t, x0)  # (B, 1, ..., 1)
        target = {"eps": noise, "x0": x0, "v": velocity(x0, noise, a_bar)}[self.target]
        per_sample = (model(x_t, t).float() - target.float()).pow(2).flatten(1).mean(1)  # (B,)
        w = self.weight(signal_to_noise(self.schedule.alpha_bar[t.cpu()]))  # (B,), float64
        return (w.to(per_sample) * per_sample).mean()


class MinSNRLoss(PredictionLoss):
    """PredictionLoss weighted by Min-SNR-gamma (Hang et al. 2023; gamma = 5 in the paper)."""

    def __init__(self, schedule: NoiseSchedule, target: str = "eps", gamma: float = 5.0):
        super().__init__(schedule, target)
        if gamma <= 0:
            raise ValueError(f"gamma must be > 0, got {gamma}")
        self.gamma = gamma

    def weight(self, snr: torch.Tensor) -> torch.Tensor:
        return min_snr_weight(snr, self.target, self.gamma)
