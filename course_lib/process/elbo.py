"""VAE math: the reparameterized sample, the Gaussian KL, and the ELBO as a loss (Kingma & Welling 2014).

    x (B, C, H, W) data in [-1, 1];  z latent;  q(z|x) = N(mu, diag(exp(logvar)));  p(z) = N(0, I);
    p(x|z) = N(x_mean(z), diag s(z)^2) with a noise level s for every pixel and colour (log_s, like x).

    -ELBO(x) = E_q[-log p(x|z)] + KL(q(z|x) || p(z))          (VAE Eq. 3)
All per-image quantities are in nats, summed over dimensions. A continuous density on 8-bit images is
a likelihood only for dequantized images (uniform noise within one bin; Theis et al. 2016, Sec. 3.1):
the loss trains on dequantized batches, as chapter 2 measures the test bits/dim.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

LOG_2PI = math.log(2 * math.pi)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """z = mu + sigma * eps with sigma = exp(logvar / 2): a sample of N(mu, sigma^2) differentiable in mu, logvar."""
    return mu + torch.exp(0.5 * logvar) * eps  # VAE Sec. 2.4, the reparameterization trick


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per example, summed over all but the batch dimension: (B,)."""
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)  # VAE Appendix B
    return kl.flatten(1).sum(1)


def gaussian_nll(x: torch.Tensor, mean: torch.Tensor, log_s: torch.Tensor) -> torch.Tensor:
    """-log N(x; mean, s^2) per example, a noise level per dimension (log_s shaped like x): (B,) nats."""
    if not x.shape == mean.shape == log_s.shape:
        raise ValueError(f"x, mean and log_s must have one shape, got {tuple(x.shape)}, {tuple(mean.shape)}, "
                         f"{tuple(log_s.shape)}")
    nll = 0.5 * ((x - mean) / log_s.exp()).pow(2) + log_s + 0.5 * LOG_2PI
    return nll.flatten(1).sum(1)


def dequantize(x: torch.Tensor, generator: torch.Generator | None = None, bins: int = 256) -> torch.Tensor:
    """8-bit images in [-1, 1] plus uniform noise within one of ``bins`` bins of width 2 / bins."""
    noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return x + noise * (2 / bins)


@dataclass
class ELBOTerms:
    recon_nll: torch.Tensor  # (B,) nats: E_q[-log p(x|z)], one sample of z
    kl: torch.Tensor  # (B,) nats
    x_mean: torch.Tensor  # (B, C, H, W) the decoder's mean for the sampled z

    @property
    def negative_elbo(self) -> torch.Tensor:
        return self.recon_nll + self.kl  # (B,) nats: an upper bound on -log p(x)


def elbo_terms(vae: nn.Module, x: torch.Tensor, generator: torch.Generator | None = None) -> ELBOTerms:
    """The two terms of the negative ELBO for a batch, with one reparameterized sample of z."""
    mu, logvar = vae.encode(x)
    eps = torch.randn(mu.shape, device=mu.device, dtype=mu.dtype, generator=generator)
    z = reparameterize(mu, logvar, eps)
    x_mean, log_s = vae.decode_distribution(z)
    return ELBOTerms(gaussian_nll(x, x_mean.float(), log_s.float()), gaussian_kl(mu.float(), logvar.float()), x_mean)


class VAELoss:
    """(recon + beta * KL) / dims of the dequantized batch, averaged. beta = 1 is the negative ELBO per
    dimension; beta < 1 trades a looser posterior for sharper reconstructions, beta > 1 the other way."""

    def __init__(self, beta: float = 1.0):
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        self.beta = beta

    def __call__(self, vae: nn.Module, x: torch.Tensor) -> torch.Tensor:
        terms = elbo_terms(vae, dequantize(x))
        return (terms.recon_nll + self.beta * terms.kl).mean() / x[0].numel()
