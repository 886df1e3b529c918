"""Sample-quality metrics: distances between point clouds, PSNR, bits per dimension, and FID
(the FID code lives in ``course_lib.evaluation.fid`` and is re-exported here).

Names -> symbols:
    data_range  R      max - min of the value range (2 for images in [-1, 1])
    num_dims    D      dimensions per example (3 * H * W for an image)
    nll_nats    -log p negative log-likelihood (or negative ELBO) of one example, in nats
"""

from __future__ import annotations

import math

import torch

from .fid import (FIDReference, FIDResult, InceptionFeatures, feature_stats, fid, frechet_distance,
                  inception_weights_path, reference_stats)

__all__ = ["sliced_wasserstein", "psnr", "bits_per_dim", "discretization_correction_bits", "InceptionFeatures",
           "feature_stats", "frechet_distance", "reference_stats", "fid", "FIDReference", "FIDResult",
           "inception_weights_path"]


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


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """Peak signal-to-noise ratio per image, 10 log10(R^2 / MSE), in dB (inf for identical images).

    Args:
        x, y: (B, C, H, W) images of the same shape; floats in [-1, 1] by default.
        data_range: R, max - min of the value range (2.0 for [-1, 1], 1.0 for [0, 1], 255 for uint8).
    Returns:
        (B,) float64.
    """
    if x.ndim != 4 or x.shape != y.shape:
        raise ValueError(f"x and y must both be (B, C, H, W) with the same shape; "
                         f"got {tuple(x.shape)} and {tuple(y.shape)}")
    mse = (x.double() - y.double()).square().flatten(1).mean(1)  # (B,); float64 also avoids uint8 wrap-around
    return 10 * torch.log10(data_range ** 2 / mse)


def bits_per_dim(nll_nats: torch.Tensor | float, num_dims: int) -> torch.Tensor:
    """Negative log-likelihood (or negative ELBO) in nats per example -> bits per dimension.

    bpd = nll / (D ln 2). For 8-bit data modelled by a continuous density, add
    ``discretization_correction_bits()``: the continuous NLL alone is not a number of bits per pixel.
    """
    nll = nll_nats if isinstance(nll_nats, torch.Tensor) else torch.tensor(nll_nats, dtype=torch.float64)
    return nll / (num_dims * math.log(2))


def discretization_correction_bits(num_bits: int = 8, data_range: float = 2.0) -> float:
    """Bits per dimension to add to a continuous density's bpd to get the bpd of discrete data.

    The 2^b pixel values tile the range R in bins of width w = R / 2^b (uniform dequantisation,
    x -> (x + u) w + low, u ~ U[0, 1)). A density p that is constant on each bin gives that bin
    probability P = p w, so -log2 P = -log2 p + log2(2^b / R): per dimension,

        bpd_discrete = nll_nats / (D ln 2) + log2(2^b / R).

    For 8-bit data in [-1, 1] this is + log2(256 / 2) = 7 bits (score_sde's ``offset = 7``; 8 for
    data in [0, 1]). Check: the uniform density on [-1, 1]^D, p = 2^-D, has 1 + 7 = 8 bits/dim.
    ``course_lib.data.to_float`` spaces the 256 values 2/255 apart; treating those as bins of width
    2/255 would add log2(255/2) instead, 0.0056 bits/dim less: state which convention a number uses.
    """
    return math.log2(2 ** num_bits / data_range)
