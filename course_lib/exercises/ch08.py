"""Chapter 8 exercises: the linear path and its velocity, and an Euler sampler for the flow ODE.

Student functions take plain tensors and numbers in the course's time convention (s = 0 data, s = 1
noise): data x0 and noise eps of one shape (B, ...), times s (B,) in [0, 1]; a velocity field
``v(x, s)`` (s a float) and a grid of times from 1 down to 0.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..process.flow_matching import ConditionalFlowMatcher
from .core import check_against_reference


def _linear_path(x0: torch.Tensor, eps: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    _, x_s, u_s = ConditionalFlowMatcher().sample_location_and_conditional_flow(x0, eps, s)
    return x_s, u_s


def check_linear_path(student_linear_path: Callable) -> None:
    """Exercise 8.1: ``linear_path(x0, eps, s) -> (x_s, u_s)``, x_s = (1 - s) x0 + s eps and u_s = d x_s / ds."""
    g = torch.Generator().manual_seed(0)
    cases = []
    for shape in [(5, 2), (4, 3, 8, 8), (3, 1)]:
        s = torch.rand(shape[0], generator=g, dtype=torch.float64)
        s[0] = 0.0  # the data end
        cases.append({"x0": torch.randn(shape, generator=g, dtype=torch.float64),
                      "eps": torch.randn(shape, generator=g, dtype=torch.float64), "s": s})
    check_against_reference(
        "linear_path", student_linear_path, _linear_path, cases,
        hint="x_s = (1 - s) x0 + s eps with s reshaped to (B, 1, ..., 1) to broadcast over each sample; its "
             "derivative in s is u_s = eps - x0 (not x0 - eps: time runs from data at s = 0 to noise at s = 1). "
             "At s = 0, x_s must be x0.",
        rtol=1e-9, atol=1e-10)


def _euler(v: Callable, noise: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    x = noise
    for s_cur, s_next in zip(times[:-1].tolist(), times[1:].tolist()):
        x = x + (s_next - s_cur) * v(x, s_cur)
    return x


def check_euler_sampler(student_euler: Callable) -> None:
    """Exercise 8.2: ``euler(v, noise, times) -> x at the last time``: x <- x + (s_next - s) v(x, s) along the grid."""
    g = torch.Generator().manual_seed(1)
    A = torch.randn(2, 2, generator=g, dtype=torch.float64) / 2
    rotate = lambda x, s: x @ A.T * (1 + s)  # noqa: E731  a linear, time-dependent field
    shrink = lambda x, s: x / max(s, 0.05) - torch.ones_like(x)  # noqa: E731  the velocity towards the point (1, 1)
    cases = [{"v": rotate, "noise": torch.randn(6, 2, generator=g, dtype=torch.float64),
              "times": torch.linspace(1, 0, n + 1, dtype=torch.float64)} for n in (1, 4)]
    cases.append({"v": shrink, "noise": torch.randn(5, 2, generator=g, dtype=torch.float64),
                  "times": torch.tensor([1.0, 0.7, 0.3, 0.1, 0.0], dtype=torch.float64)})
    check_against_reference(
        "euler", student_euler, _euler, cases,
        hint="for each consecutive pair (s, s_next) of the grid, x = x + (s_next - s) * v(x, s); the step is "
             "negative (time runs from noise at 1 down to data at 0), and the velocity is taken at the start of "
             "the step. The grid need not be uniform.",
        rtol=1e-9, atol=1e-10)
