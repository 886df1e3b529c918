"""Chapter 2 exercises: the reparameterized sample and the Gaussian KL.

Student functions take plain tensors: mu and logvar of shape (B, C, H, W) (the encoder's
diagonal Gaussian), eps of the same shape (standard normal noise).
"""

from __future__ import annotations

from typing import Callable

import torch

from ..process.elbo import gaussian_kl, reparameterize
from .core import check_against_reference


def _cases(num: int = 4, seed: int = 0) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    shapes = [(8, 4, 8, 8), (3, 4, 16, 16), (5, 2, 4, 4), (1, 4, 8, 8)]
    return [{
        "mu": torch.randn(shape, generator=g, dtype=torch.float64),
        "logvar": 2 * torch.rand(shape, generator=g, dtype=torch.float64) - 1.5,  # sigma between 0.47 and 1.28
        "eps": torch.randn(shape, generator=g, dtype=torch.float64),
    } for shape in shapes[:num]]


def check_reparameterize(student_reparameterize: Callable) -> None:
    """Exercise 2.1: ``reparameterize(mu, logvar, eps) -> z = mu + exp(logvar / 2) * eps``."""
    check_against_reference(
        "reparameterize", student_reparameterize, reparameterize, _cases(),
        hint="logvar is log(sigma^2), so sigma = exp(logvar / 2) (not exp(logvar), not logvar / 2); "
             "z = mu + sigma * eps, elementwise.")


def check_gaussian_kl(student_kl: Callable) -> None:
    """Exercise 2.2: ``gaussian_kl(mu, logvar) -> (B,)`` KL(N(mu, sigma^2) || N(0, 1)) summed per example."""
    cases = [{"mu": c["mu"], "logvar": c["logvar"]} for c in _cases(seed=1)]
    check_against_reference(
        "gaussian_kl", student_kl, gaussian_kl, cases,
        hint="per dimension, KL = 0.5 * (mu^2 + sigma^2 - 1 - log sigma^2) with sigma^2 = exp(logvar); "
             "then sum over every dimension except the batch (flatten(1).sum(1)), giving shape (B,).")
