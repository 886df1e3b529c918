"""Latents for latent diffusion (LDM, Rombach et al. 2022): encode images once with the chapter 2 VAE,
scale the latents to unit variance, draw training batches of (latent, caption tokens), decode samples.

Names -> symbols:
    x             x         images; uint8 (N, 3, H, W) in, float in [-1, 1] out of the decoder
    mu, logvar              the VAE posterior q(z | x) = N(mu, diag(exp(logvar))), (N, C, h, w) each
    z             z         a latent sample mu + sigma * eps (VAE Sec. 2.4), sigma = exp(logvar / 2)
    scale         kappa     the latent scaling factor: 1 / std(z) over the training set, so that kappa z has
                            unit variance (LDM Sec. 4.3.2 and App. G; Stable Diffusion's is 0.18215)
The diffusion model sees kappa z; ``decode_latents`` divides by kappa before decoding.
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch import nn

from .cifar import to_float
from ..process.elbo import reparameterize


def _device(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


@torch.no_grad()
def encode_images(vae: nn.Module, images: torch.Tensor, batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """The posterior (mu, logvar) of uint8 ``images`` (N, 3, H, W), each (N, C, h, w) float32 on the
    images' device; the VAE runs on its own device, ``batch_size`` images at a time."""
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise TypeError(f"expected uint8 images (N, C, H, W) in 0..255, got {images.dtype} {tuple(images.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    dev, mus, logvars = _device(vae), [], []
    for chunk in images.split(batch_size):
        mu, logvar = vae.encode(to_float(chunk.to(dev)))  # each (b, C, h, w)
        mus.append(mu.float().to(images.device))
        logvars.append(logvar.float().to(images.device))
    return torch.cat(mus), torch.cat(logvars)


def sample_latents(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """z = mu + sigma * eps, one sample of q(z | x) per row (VAE Sec. 2.4), on mu's device."""
    if mu.shape != logvar.shape or not mu.is_floating_point():
        raise ValueError(f"mu and logvar must be float tensors of one shape, got {tuple(mu.shape)} {mu.dtype} "
                         f"and {tuple(logvar.shape)} {logvar.dtype}")
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return reparameterize(mu, logvar, eps)


def latent_scale(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> float:
    """kappa = 1 / std(z) over all entries of one sample z ~ q(z | x) per image (LDM Sec. 4.3.2, App. G):
    the factor that gives the diffusion model latents of unit variance, as DDPM's images in [-1, 1] are
    about. Measured in float64."""
    z = sample_latents(mu, logvar, generator).double()
    return float(1.0 / z.std())  # LDM App. G: rescale by 1 / std of the latents


def latent_batches(mu: torch.Tensor, logvar: torch.Tensor, cond: torch.Tensor, batch_size: int, scale: float,
                   generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless random batches (kappa z, cond) drawn where the latents lie, a fresh z ~ q(z | x) each time:
    (B, C, h, w) float and the rows of ``cond``, a long tensor on mu's device with one row per latent:
    caption tokens (N, L) (chapter 6) or class labels (N,) (chapter 7). ``generator`` on mu's device too."""
    if mu.shape != logvar.shape or mu.ndim != 4:
        raise ValueError(f"mu and logvar must share a shape (N, C, h, w), got {tuple(mu.shape)} and "
                         f"{tuple(logvar.shape)}")
    if cond.ndim not in (1, 2) or cond.shape[0] != mu.shape[0] or cond.dtype != torch.long:
        raise ValueError(f"cond must be a long tensor of tokens ({mu.shape[0]}, L) or labels ({mu.shape[0]},), "
                         f"one row per latent; got {cond.dtype} {tuple(cond.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = mu.shape[0]
    while True:
        idx = torch.randint(0, n, (batch_size,), device=mu.device, generator=generator)
        z = sample_latents(mu[idx], logvar[idx], generator)  # (B, C, h, w)
        yield scale * z, cond[idx]


@torch.no_grad()
def decode_latents(vae: nn.Module, z: torch.Tensor, scale: float, batch_size: int = 500) -> torch.Tensor:
    """Images (N, 3, H, W) float in about [-1, 1] (the decoder's mean) from scaled latents kappa z (N, C, h, w),
    on z's device; the VAE runs on its own device. ``data.to_uint8`` turns them into pixels."""
    if not z.is_floating_point() or z.ndim != 4:
        raise TypeError(f"expected float latents (N, C, h, w), got {z.dtype} {tuple(z.shape)}")
    dev = _device(vae)
    dtype = next(vae.parameters()).dtype
    out = [vae.decode(chunk.to(dev, dtype) / scale).to(z.device, z.dtype) for chunk in z.split(batch_size)]
    return torch.cat(out)
