"""Samplers of a flow model: integrate dx/ds = v(x, s) from noise (s = 1) to data (s = 0).

Time convention (the course's, see process/schedules.py and process/flow_matching.py): s in [0, 1], s = 0 data, s = 1
noise. A time grid ``times`` is a decreasing float sequence s_0 = 1 > s_1 > ... > s_N = 0 (N steps);
diffusers' FlowMatchEulerDiscreteScheduler calls the same numbers ``sigmas``. The model is called as
``model(x, time_scale * s)`` with s the same for the whole batch (see flow_matching.TIME_SCALE).

Names -> symbols:
    x        x_s        the state at time s, (B, ...)
    v        v(x, s)    the model's velocity d x / ds (it points from data towards noise)
    h        s_{i+1} - s_i, negative: each step moves towards the data
    shift    alpha      SD3's time shift s -> alpha s / (1 + (alpha - 1) s) (Esser et al. 2024, Eq. 23)
    S        straightness, Liu et al. 2023: E int_0^1 ||(x_1 - x_0) - v(x_s, s)||^2 ds

Every fixed-grid sampler returns x at s_N (and, with ``keep_trajectory``, the states (N + 1, B, ...), noise
first). Model calls (NFE): Euler N, midpoint 2N, Heun 2N - 1 (its last step, to s = 0, stays Euler as in
diffusers' FlowMatchHeunDiscreteScheduler and EDM's Alg. 1).
"""

from __future__ import annotations

import math
import numbers
from typing import Callable, Sequence

import torch

from ..process.flow_matching import TIME_SCALE, Model


def _check_shift(shift: float) -> None:
    if isinstance(shift, bool) or not isinstance(shift, numbers.Real) or not math.isfinite(shift) or shift <= 0:
        raise ValueError(f"shift must be a finite number > 0 (1: no shift; SD3 uses 3), got {shift!r}")


def shift_times(s: torch.Tensor, shift: float = 1.0) -> torch.Tensor:
    """alpha s / (1 + (alpha - 1) s): spends more steps at high noise for alpha > 1 (SD3 uses alpha = 3)."""
    _check_shift(shift)
    return shift * s / (1 + (shift - 1) * s)  # SD3 Eq. 23 with alpha = sqrt(m / n)


def flow_times(num_steps: int, shift: float = 1.0, num_train_steps: int = 1000) -> torch.Tensor:
    """The grid of diffusers' FlowMatchEulerDiscreteScheduler after ``set_timesteps(num_steps)``: (N + 1,) float64.

    N values from 1 down to the smallest training time, linearly in s, then shifted, then 0 appended. As in
    diffusers, the smallest time shift(1 / T) is shifted again (a quirk kept for parity; nothing with shift = 1).
    ``torch.linspace(1, 0, N + 1)`` (optionally through ``shift_times``) is the plain uniform grid.
    """
    for name, n in (("num_steps", num_steps), ("num_train_steps", num_train_steps)):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"{name} must be an int >= 1, got {n!r}")
    if num_train_steps == 1 and num_steps > 1:  # the smallest training time 1 / T would be 1: every value 1
        raise ValueError(f"num_train_steps=1 allows only num_steps=1 (the grid runs from 1 down to 1 / T); "
                         f"got num_steps={num_steps}")
    _check_shift(shift)
    s_min = shift_times(torch.tensor(1.0 / num_train_steps, dtype=torch.float64), shift)
    s = shift_times(torch.linspace(1.0, float(s_min), num_steps, dtype=torch.float64), shift)
    return torch.cat([s, torch.zeros(1, dtype=torch.float64)])


def _as_times(times: Sequence[float] | torch.Tensor) -> list[float]:
    """Check a grid (1-D, at least 2 values in [0, 1], strictly decreasing) and return it as floats."""
    t = torch.as_tensor(times, dtype=torch.float64)
    if t.ndim != 1 or t.numel() < 2:
        raise ValueError("times must be a 1-D grid of at least 2 values, noise end first, e.g. flow_times(50)")
    if bool((t[1:] >= t[:-1]).any()) or float(t.min()) < 0 or float(t.max()) > 1:
        raise ValueError(f"times must decrease strictly within [0, 1] (s = 1 noise, s = 0 data); got {t.tolist()}")
    return t.tolist()


def _velocity(model: Model, x: torch.Tensor, s: float, time_scale: float) -> torch.Tensor:
    t = torch.full((x.shape[0],), time_scale * s, device=x.device, dtype=x.dtype)  # (B,) the model's time
    return model(x, t).to(x.dtype)


@torch.no_grad()
def flow_euler_sample(model: Model, noise: torch.Tensor, times: Sequence[float] | torch.Tensor,
                      time_scale: float = TIME_SCALE, keep_trajectory: bool = False):
    """Euler's method, x <- x + h v(x, s): diffusers' FlowMatchEulerDiscreteScheduler (no churn), N calls.

    Args:
        model: ``model(x, time_scale * s)`` -> the velocity, x's shape.
        noise: the start x at s_0 (usually 1), (B, ...); its device and dtype are used throughout.
        times: the grid, e.g. ``flow_times(50)`` or ``torch.linspace(1, 0, 51)``.
        keep_trajectory: also return the states (N + 1, B, ...), noise first.
    """
    s = _as_times(times)
    x, kept = noise, [noise]
    for s_cur, s_next in zip(s[:-1], s[1:]):
        x = x + (s_next - s_cur) * _velocity(model, x, s_cur, time_scale)  # Euler step
        kept.append(x)
    return (x, torch.stack(kept)) if keep_trajectory else x


@torch.no_grad()
def flow_midpoint_sample(model: Model, noise: torch.Tensor, times: Sequence[float] | torch.Tensor,
                         time_scale: float = TIME_SCALE, keep_trajectory: bool = False):
    """The explicit midpoint rule (second order): a half Euler step, then the full step with the slope
    found there. 2N calls. Arguments as ``flow_euler_sample``."""
    s = _as_times(times)
    x, kept = noise, [noise]
    for s_cur, s_next in zip(s[:-1], s[1:]):
        h = s_next - s_cur
        x_mid = x + 0.5 * h * _velocity(model, x, s_cur, time_scale)  # half an Euler step
        x = x + h * _velocity(model, x_mid, s_cur + 0.5 * h, time_scale)  # the slope at the midpoint
        kept.append(x)
    return (x, torch.stack(kept)) if keep_trajectory else x


@torch.no_grad()
def flow_heun_sample(model: Model, noise: torch.Tensor, times: Sequence[float] | torch.Tensor,
                     time_scale: float = TIME_SCALE, keep_trajectory: bool = False):
    """Heun's method (the trapezoid rule with an Euler predictor), as diffusers' FlowMatchHeunDiscreteScheduler:
    the step to s = 0 stays Euler. 2N - 1 calls. Arguments as ``flow_euler_sample``."""
    s = _as_times(times)
    x, kept = noise, [noise]
    for s_cur, s_next in zip(s[:-1], s[1:]):
        h = s_next - s_cur
        d = _velocity(model, x, s_cur, time_scale)
        x_next = x + h * d  # the Euler predictor
        if s_next > 0:  # correct with the slope at the end (EDM Alg. 1, lines 6-8)
            x_next = x + h * 0.5 * (d + _velocity(model, x_next, s_next, time_scale))
        x = x_next
        kept.append(x)
    return (x, torch.stack(kept)) if keep_trajectory else x


@torch.no_grad()
def flow_odeint_sample(model: Model, noise: torch.Tensor, rtol: float = 1e-5, atol: float = 1e-5,
                       method: str = "dopri5", time_scale: float = TIME_SCALE) -> tuple[torch.Tensor, int]:
    """An adaptive solver from torchdiffeq (Dormand-Prince 5(4), "dopri5", by default; what the FM and torchcfm
    CIFAR-10 results use) from s = 1 to s = 0. Returns (x at s = 0, the number of model calls, NFE)."""
    from torchdiffeq import odeint  # imported here: only this sampler needs it

    nfe = 0

    def f(s: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        nonlocal nfe
        nfe += 1
        return _velocity(model, x, float(s), time_scale)

    span = torch.tensor([1.0, 0.0], device=noise.device, dtype=noise.dtype)
    x = odeint(f, noise, span, rtol=rtol, atol=atol, method=method)[-1]  # (B, ...) at s = 0
    return x, nfe


def straightness(trajectory: torch.Tensor, times: Sequence[float] | torch.Tensor) -> float:
    """Liu et al. 2023's straightness S = int_0^1 E ||(x_1 - x_0) - dx/ds||^2 ds of sampled paths, from the
    states (N + 1, B, ...) on the grid ``times``: each step's velocity (x_{i+1} - x_i) / h (for Euler, v itself)
    against the straight line's x_{s_0} - x_{s_N}, weighted by |h|; squared norms summed over dimensions,
    averaged over the batch. 0 for straight paths travelled at constant speed."""
    s = torch.tensor(_as_times(times), dtype=torch.float64)
    if trajectory.shape[0] != s.numel():
        raise ValueError(f"trajectory has {trajectory.shape[0]} states but times has {s.numel()} values")
    x = trajectory.detach().double().cpu()
    h = (s[:-1] - s[1:]).reshape(-1, *([1] * (x.ndim - 1)))  # (N, 1, ..., 1) positive step lengths
    line = (x[0] - x[-1]) / (s[0] - s[-1])  # (B, ...) the straight line's velocity
    steps = (x[:-1] - x[1:]) / h  # (N, B, ...) the velocity each step took
    err = (steps - line).pow(2).flatten(2).sum(-1).mean(-1)  # (N,)
    return float((h.flatten() * err).sum() / (s[0] - s[-1]))


@torch.no_grad()
def reflow_pairs(model: Model, noise: torch.Tensor, times: Sequence[float] | torch.Tensor,
                 sampler: Callable[..., torch.Tensor] = flow_euler_sample, batch_size: int = 1000,
                 time_scale: float = TIME_SCALE) -> tuple[torch.Tensor, torch.Tensor]:
    """The coupling of a trained flow: (x0, eps) with x0 the ODE's sample from noise eps, in batches of
    ``batch_size``. RF Alg. 1 writes these pairs (Z_1, Z_0) (its time runs from noise Z_0 to data Z_1); the
    next rectified flow is trained on them.

    Args:
        noise: (M, ...) the eps to start from (on the model's device).
        times, sampler: the grid and a fixed-grid sampler above (the RF paper uses an adaptive RK45).
    Returns:
        (x0, eps), both (M, ...); train the next flow on them with ``PairedFlowMatchingLoss``.
    """
    x0 = [sampler(model, z, times, time_scale=time_scale) for z in noise.split(batch_size)]
    return torch.cat(x0), noise
