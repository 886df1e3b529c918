"""Sample-quality metrics. Chapter 1: distances between point clouds."""

from __future__ import annotations

import torch


def sliced_wasserstein(x: torch.Tensor, y: torch.Tensor, num_projections: int = 512,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """Sliced 2-Wasserstein distance between two equal-size point clouds (Bonneel et al. 2015).

    SW_2(x, y)^2 = E_theta W_2^2(<x, theta>, <y, theta>), theta uniform on the sphere; in 1-D,
    W_2 between empirical measures of equal size pairs the sorted values.

    Args:
        x, y: (N, D) samples of the two distributions, same N and D.
    Returns:
        a float64 scalar tensor, SW_2 (not squared).
    """
    if x.ndim != 2 or x.shape != y.shape:
        raise ValueError(f"x and y must both be (N, D) with the same N and D; got {tuple(x.shape)} and {tuple(y.shape)}")
    x, y = x.detach().double().cpu(), y.detach().double().cpu()
    theta = torch.randn(x.shape[1], num_projections, generator=generator, dtype=torch.float64)
    theta = theta / theta.norm(dim=0, keepdim=True)  # (D, P) unit directions
    px, _ = torch.sort(x @ theta, dim=0)  # (N, P)
    py, _ = torch.sort(y @ theta, dim=0)
    return ((px - py) ** 2).mean().sqrt()
