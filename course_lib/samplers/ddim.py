"""Fast samplers that visit N << T steps: timestep spacings, DDIM and its inversion.
The ODE solvers (DPM-Solver++(2M), Euler, Heun) are in samplers/ode.py.

Time convention: integer steps t in {0, ..., T-1}, t = 0 nearest the data (see process/schedules.py).
A fast sampler visits N steps t_0 > t_1 > ... > t_{N-1}, noisiest first, as listed by
``timesteps``, and ends at "step -1", the data end, where alpha_bar = 1 (diffusers'
``set_alpha_to_one=True``; ``set_alpha_to_one=False``, Stable Diffusion's setting, ends at alpha_bar_0). The model is called as ``model(x_t, t)`` with t a (B,) long tensor.

Names -> symbols:
    pred       the model's output, a prediction of eps, x0 or v (``prediction_type``)
    x0_hat     hat x_0          predicted clean sample
    eps_hat    hat epsilon      predicted noise
    a_bar      alpha_bar_t      at the current step; a_prev at the step the update lands on
    eta        eta              DDIM's noise scale: 0 deterministic, 1 the DDPM posterior (DDIM Eq. 16)
    sigma      sigma_t(eta)     standard deviation of the DDIM step's noise (DDIM Eq. 16)
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from ..process.diffusion import (check_prediction_type, check_timesteps, clip_x0_hat, eps_to_x0, pred_to_eps,
                                 pred_to_x0, x0_to_eps)
from ..process.schedules import NoiseSchedule

Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
SPACINGS = ("leading", "trailing", "linspace")


def check_inference_steps(num_train_steps: int, num_inference_steps: int, spacing: str) -> None:
    """Raise a clear error unless 1 <= num_inference_steps <= num_train_steps and the spacing exists."""
    for name, n in (("num_train_steps", num_train_steps), ("num_inference_steps", num_inference_steps)):
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"{name} must be an int, got {type(n).__name__}")
    if not 1 <= num_inference_steps <= num_train_steps:
        raise ValueError(f"num_inference_steps must lie in [1, {num_train_steps}] (the training steps T), "
                         f"got {num_inference_steps}")
    if spacing not in SPACINGS:
        raise ValueError(f"Unknown spacing {spacing!r}; expected one of 'leading', 'trailing', 'linspace'.")


def _spaced(T: int, N: int, spacing: str, steps_offset: int) -> torch.Tensor:
    """The three spacings of Lin et al. 2024 (Table 2), written as diffusers computes them."""
    i = torch.arange(N, dtype=torch.float64)
    if spacing == "leading":  # 0, T//N, 2 T//N, ...: never reaches T-1 unless N = T
        t = (i * (T // N)).flip(0) + steps_offset
    elif spacing == "trailing":  # T, T - T/N, ..., rounded, minus 1: always starts at T-1
        step = (T - T / N) - T  # numpy's arange steps by (start + step) - start; the same rounding matches it
        t = (T + i * step).round() - 1
    else:  # linspace(0, T-1, N) rounded, like numpy: i * step with the last value set exactly
        t = i * ((T - 1) / max(N - 1, 1))
        t[-1] = T - 1 if N > 1 else 0
        t = t.round().flip(0)
    return t.long()


def timesteps(num_train_steps: int, num_inference_steps: int, spacing: str = "leading",
              steps_offset: int = 0) -> torch.Tensor:
    """The N integer steps a fast sampler visits, noisiest first: (N,) long, on the CPU.

    Equal to diffusers' ``scheduler.timesteps`` after ``set_timesteps(N)`` for DDIM (and DDPM, Euler
    and Heun where their float timesteps are integers). "leading" (DDIM's default) is
    arange(N) * (T // N) reversed, plus ``steps_offset`` (1 for Stable Diffusion); "trailing" is
    round(T - i T / N) - 1; "linspace" is round(linspace(0, T-1, N)) reversed.
    """
    check_inference_steps(num_train_steps, num_inference_steps, spacing)
    t = _spaced(num_train_steps, num_inference_steps, spacing, steps_offset)
    if int(t.min()) < 0 or int(t.max()) >= num_train_steps:
        raise ValueError(f"steps_offset={steps_offset} moves the steps outside [0, {num_train_steps - 1}]")
    return t


def _as_steps(steps: Sequence[int] | torch.Tensor, num_steps: int) -> list[int]:
    """Check a sampler's timesteps (integers, strictly decreasing, in [0, T)) and return them as ints."""
    steps_t = torch.as_tensor(steps)
    if steps_t.is_floating_point() or steps_t.dtype == torch.bool or steps_t.ndim != 1 or steps_t.numel() == 0:
        raise ValueError("timesteps must be a non-empty 1-D sequence of integer steps, e.g. timesteps(1000, 50)")
    out = [int(t) for t in steps_t]
    bad = [i for i, (a, b) in enumerate(zip(out, out[1:])) if b >= a]
    if bad:
        raise ValueError(f"timesteps must be strictly decreasing (noisiest first); "
                         f"got {out[bad[0]]} then {out[bad[0] + 1]} at position {bad[0]}")
    check_timesteps(steps_t, steps_t.shape[0], num_steps)
    return out


def _batch(t: int, x: torch.Tensor) -> torch.Tensor:
    return torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)  # (B,)


def _alpha_bar(schedule: NoiseSchedule, t: int, set_alpha_to_one: bool = True) -> float:
    """alpha_bar_t as a float64 Python number; at the data end t < 0: 1 (``set_alpha_to_one=True``) or
    alpha_bar_0 (False: diffusers' ``final_alpha_cumprod`` / ``initial_alpha_cumprod``)."""
    if t >= 0:
        return float(schedule.alpha_bar[t])
    return 1.0 if set_alpha_to_one else float(schedule.alpha_bar[0])


def ddim_sigma(schedule: NoiseSchedule, t: int, t_prev: int, eta: float, set_alpha_to_one: bool = True) -> float:
    """sigma_t(eta) of a DDIM step t -> t_prev (DDIM Eq. 16): eta times the standard deviation of the
    DDPM posterior between the two steps; 0 for eta = 0, and beta_tilde_t ** 0.5 for eta = 1, t_prev = t - 1."""
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must lie in [0, 1] (0: deterministic DDIM, 1: DDPM-like), got {eta}")
    a_bar, a_prev = _alpha_bar(schedule, t), _alpha_bar(schedule, t_prev, set_alpha_to_one)
    return eta * ((1 - a_prev) / (1 - a_bar) * (1 - a_bar / a_prev)) ** 0.5  # DDIM Eq. 16


def ddim_step(schedule: NoiseSchedule, pred: torch.Tensor, t: int, t_prev: int, x_t: torch.Tensor,
              eta: float = 0.0, noise: torch.Tensor | None = None, prediction_type: str = "eps",
              clip_sample: float | None = None, dynamic_threshold: tuple[float, float] | None = None,
              use_clipped_model_output: bool = False, set_alpha_to_one: bool = True) -> torch.Tensor:
    """One DDIM step x_t -> x_{t_prev} (DDIM Eq. 12), for the whole batch.

    Args:
        pred: the model's output at (x_t, t), same shape as x_t.
        t, t_prev: the current step and the one to land on, t_prev < t; t_prev < 0 is the data end.
        eta: 0 gives the deterministic DDIM update, 1 the DDPM posterior variance beta_tilde.
        noise: standard Gaussian noise of x_t's shape, needed when eta > 0.
        clip_sample, dynamic_threshold: clip x0_hat (``process.diffusion.clip_x0_hat``); None: no clipping.
        use_clipped_model_output: re-derive eps_hat from the clipped x0_hat (GLIDE; diffusers' argument of
            the same name). False keeps the model's eps, as diffusers does by default.
        set_alpha_to_one: the data end's alpha_bar is 1 (True) or alpha_bar_0 (False).
    """
    check_prediction_type(prediction_type)
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must lie in [0, 1] (0: deterministic DDIM, 1: DDPM-like), got {eta}")
    if eta > 0 and (noise is None or noise.shape != x_t.shape):
        raise ValueError("eta > 0 needs standard Gaussian noise of x_t's shape")
    if not isinstance(t, int) or not isinstance(t_prev, int) or t_prev >= t:
        raise ValueError(f"t and t_prev must be ints with t_prev < t, got t={t!r}, t_prev={t_prev!r}")
    check_timesteps(t, x_t.shape[0], schedule.num_steps)
    a_bar, a_prev = _alpha_bar(schedule, t), _alpha_bar(schedule, t_prev, set_alpha_to_one)
    x0_hat = pred_to_x0(pred, x_t, a_bar, prediction_type)
    eps_hat = pred_to_eps(pred, x_t, a_bar, prediction_type)
    x0_hat = clip_x0_hat(x0_hat, clip_sample, dynamic_threshold)
    if use_clipped_model_output:
        eps_hat = x0_to_eps(x0_hat, x_t, a_bar)  # GLIDE: eps consistent with the clipped x0_hat
    sigma = ddim_sigma(schedule, t, t_prev, eta, set_alpha_to_one)  # DDIM Eq. 16
    x_prev = a_prev ** 0.5 * x0_hat + (1 - a_prev - sigma ** 2) ** 0.5 * eps_hat  # DDIM Eq. 12
    if eta > 0:
        x_prev = x_prev + sigma * noise  # DDIM Eq. 12, the random noise term
    return x_prev


@torch.no_grad()
def ddim_sample(model: Model, schedule: NoiseSchedule, x_T: torch.Tensor, timesteps: Sequence[int],
                eta: float = 0.0, prediction_type: str = "eps", generator: torch.Generator | None = None,
                keep_trajectory: bool = False, clip_sample: float | None = None,
                dynamic_threshold: tuple[float, float] | None = None, use_clipped_model_output: bool = False,
                set_alpha_to_one: bool = True):
    """DDIM sampling (Song et al. 2021) from x_T down to x0 over the given steps.

    The step after t is t - T // N, as in diffusers' DDIMScheduler, whatever the spacing: that is
    the next listed step for "leading", and for "trailing" when N divides T; for "linspace" it is
    not (a diffusers quirk kept for parity; call ``ddim_step`` in a loop to choose t_prev yourself).

    Args:
        model: ``model(x_t, t)`` -> a prediction of ``prediction_type`` ("eps", "x0" or "v").
        x_T: the starting noise, (B, ...); its device and dtype are used throughout.
        timesteps: the N steps to visit, noisiest first, e.g. ``timesteps(1000, 50, "trailing")``.
        eta: 0 deterministic; > 0 draws one torch.randn of x's shape per step from ``generator``.
        keep_trajectory: also return the states (N + 1, B, ...), x_T first.
        clip_sample, dynamic_threshold, use_clipped_model_output, set_alpha_to_one: as in ``ddim_step``
            (diffusers' DDIMScheduler options of the same names; ``dynamic_threshold`` is its
            ``thresholding`` with (dynamic_thresholding_ratio, sample_max_value)).
    """
    steps = _as_steps(timesteps, schedule.num_steps)
    stride = schedule.num_steps // len(steps)
    x, kept = x_T, [x_T]
    for t in steps:
        pred = model(x, _batch(t, x)).to(x.dtype)
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype) if eta > 0 else None
        x = ddim_step(schedule, pred, t, t - stride, x, eta=eta, noise=noise, prediction_type=prediction_type,
                      clip_sample=clip_sample, dynamic_threshold=dynamic_threshold,
                      use_clipped_model_output=use_clipped_model_output, set_alpha_to_one=set_alpha_to_one)
        kept.append(x)
    return (x, torch.stack(kept)) if keep_trajectory else x


@torch.no_grad()
def ddim_invert(model: Model, schedule: NoiseSchedule, x0: torch.Tensor, timesteps: Sequence[int],
                prediction_type: str = "eps", keep_trajectory: bool = False, set_alpha_to_one: bool = True):
    """DDIM inversion: run the deterministic DDIM update forwards, from data x0 to noise x_T.

    ``timesteps`` are given in sampling order (noisiest first, as for ``ddim_sample``) and visited
    in reverse, so ``ddim_sample(model, schedule, ddim_invert(model, schedule, x0, ts), ts)`` is
    close to x0. Each step moves x from level t - T // N (the data end for the first) up to t,
    with the model evaluated at (x, t): the exact inverse would need eps(x_t, t) before x_t is
    known, so, like diffusers' DDIMInverseScheduler, the step uses the model at its target step.

    "eps" and "v" predictions are read at x's level, as diffusers does. An "x0" prediction is read as
    eps at the model's own step t (alpha_bar_t < 1), where the model's targets are one another's
    conversions: reading it at x's level would divide by sqrt(1 - alpha_bar) = 0 at the data end
    (diffusers' DDIMInverseScheduler does). So an x0 model inverts exactly like the eps model it is built from.
    ``set_alpha_to_one=False`` starts from alpha_bar_0 instead of 1 (diffusers' ``initial_alpha_cumprod``).
    """
    check_prediction_type(prediction_type)
    steps = _as_steps(timesteps, schedule.num_steps)
    stride = schedule.num_steps // len(steps)
    x, kept = x0, [x0]
    for t in reversed(steps):
        a_from, a_to = _alpha_bar(schedule, t - stride, set_alpha_to_one), _alpha_bar(schedule, t)
        pred = model(x, _batch(t, x)).to(x.dtype)
        if prediction_type == "x0":  # eps at the model's step t (a_to < 1), then x0_hat at x's level
            eps_hat = x0_to_eps(pred, x, a_to)
            x0_hat = eps_to_x0(eps_hat, x, a_from)  # = x at the data end, a_from = 1
        else:
            x0_hat = pred_to_x0(pred, x, a_from, prediction_type)
            eps_hat = pred_to_eps(pred, x, a_from, prediction_type)
        x = a_to ** 0.5 * x0_hat + (1 - a_to) ** 0.5 * eps_hat  # DDIM Eq. 12 with eta = 0, run upwards (DDIM Sec. 4.3)
        kept.append(x)
    return (x, torch.stack(kept)) if keep_trajectory else x


def slerp(z0: torch.Tensor, z1: torch.Tensor, weight: float | torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between two noise tensors of the same shape, per example:
    sin((1 - w) theta) / sin(theta) z0 + sin(w theta) / sin(theta) z1, theta the angle between z0 and
    z1 (flattened). Keeps the norm of Gaussian noise, which a straight line would shrink (by up to
    sqrt(2) at w = 1/2); DDIM Sec. 5.3 interpolates x_T this way. ``weight``: a float or (B,) in [0, 1]."""
    if z0.shape != z1.shape:
        raise ValueError(f"z0 and z1 must share a shape; got {tuple(z0.shape)} and {tuple(z1.shape)}")
    w = torch.as_tensor(weight, dtype=z0.dtype, device=z0.device).reshape(-1, *([1] * (z0.ndim - 1)))
    a, b = z0.flatten(1), z1.flatten(1)
    cos = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))
    theta = torch.arccos(cos.clamp(-1, 1)).reshape(-1, *([1] * (z0.ndim - 1)))  # (B, 1, ..., 1)
    sin = torch.sin(theta)
    out = (torch.sin((1 - w) * theta) * z0 + torch.sin(w * theta) * z1) / sin.clamp(min=1e-12)
    return torch.where(sin > 1e-6, out, (1 - w) * z0 + w * z1)  # parallel z0, z1: the limit is the straight line
