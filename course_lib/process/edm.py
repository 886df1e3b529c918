"""EDM's view of diffusion (Karras et al. 2022): a denoiser D(x; sigma) of x = x0 + sigma eps,
its preconditioning and training loss, and a trained VP (DDPM) model read as such a denoiser.

Time convention: integer steps t in {0, ..., T-1}, t = 0 nearest the data (see process/schedules.py).
EDM's noise level of step t is sigma_t = sqrt((1 - alpha_bar_t) / alpha_bar_t), increasing with t;
the VP sample is x_t = x / sqrt(sigma^2 + 1) (so x = x_t / sqrt(alpha_bar_t)). sigma = 0 is the data.

Names -> symbols:
    x            x = x0 + sigma eps   EDM's (variance-exploding) sample at noise level sigma
    sigma        sigma                its noise level (EDM's sigma(t) = t)
    D            D(x; sigma)          the denoiser, an estimate of E[x0 | x]
    F            F_theta              the raw network inside D (EDM Eq. 7)
    c_skip, c_out, c_in, c_noise      EDM's preconditioning (Table 1)
    sigma_data   sigma_data           the data's standard deviation (0.5 in EDM)
    P_mean, P_std                     ln sigma ~ N(P_mean, P_std^2) during training (Table 1)
    lam          lambda(sigma)        the loss weight (sigma^2 + sigma_data^2) / (sigma sigma_data)^2
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from .diffusion import check_prediction_type, pred_to_x0
from .schedules import NoiseSchedule

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # D(x, sigma), sigma of shape (B,)


def _per_example(sigma: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
    """sigma as a (B, 1, ..., 1) tensor in x's dtype and device, from a float or a (B,) tensor."""
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    return sigma.expand(x.shape[0]).reshape(-1, *([1] * (x.ndim - 1)))


# ---- a trained VP eps-model as a denoiser -----------------------------------------------------

class VPDenoiser:
    """A model of the course's VP process, ``model(x_t, t)``, read as EDM's denoiser D(x; sigma), as
    k-diffusion's ``DiscreteEpsDDPMDenoiser`` does: sigma -> the step t of that noise level,
    x_t = c_in x with c_in = 1 / sqrt(sigma^2 + 1), and D = x - sigma eps_hat(x_t, t) (EDM Table 1, VP
    column); an x0 or v prediction is read as x0_hat directly (at alpha_bar = 1 / (sigma^2 + 1)).

    Args:
        model: ``model(x_t, t)`` -> a prediction of ``prediction_type`` ("eps", "x0" or "v").
        quantize: True (default) calls the model at the nearest step in log sigma, a (B,) long tensor,
            as the course's models expect (EDM rounds sigma likewise for its discrete-time model); False
            interpolates a fractional step linearly in log sigma, a (B,) float tensor.
    Called as ``denoiser(x, sigma)`` with x (B, ...) and sigma a float or (B,); returns x0_hat, x's shape.
    """

    def __init__(self, model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], schedule: NoiseSchedule,
                 quantize: bool = True, prediction_type: str = "eps"):
        check_prediction_type(prediction_type)
        self.model, self.quantize, self.prediction_type = model, quantize, prediction_type
        a_bar = schedule.alpha_bar
        self.sigmas = ((1 - a_bar) / a_bar).sqrt()  # (T,) float64, increasing with t
        self.log_sigmas = self.sigmas.log()

    @property
    def sigma_min(self) -> float:
        return float(self.sigmas[0])

    @property
    def sigma_max(self) -> float:
        return float(self.sigmas[-1])

    def sigma_to_t(self, sigma: torch.Tensor) -> torch.Tensor:
        """The step of noise level sigma, (B,): the nearest one in log sigma (long), or interpolated (float64)."""
        log_sigma = torch.as_tensor(sigma, dtype=torch.float64).cpu().log().reshape(-1)  # (B,)
        if self.quantize:
            return (log_sigma[None, :] - self.log_sigmas[:, None]).abs().argmin(dim=0)
        T = self.log_sigmas.numel()
        low = (torch.searchsorted(self.log_sigmas, log_sigma, right=True) - 1).clamp(0, T - 2)
        lo, hi = self.log_sigmas[low], self.log_sigmas[low + 1]
        w = ((lo - log_sigma) / (lo - hi)).clamp(0, 1)  # outside [sigma_min, sigma_max]: the end step
        return (1 - w) * low + w * (low + 1)

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        s = _per_example(sigma, x)  # (B, 1, ..., 1)
        t = self.sigma_to_t(s.reshape(-1)).to(x.device)  # (B,)
        x_t = x * (1 / (s ** 2 + 1) ** 0.5)  # c_in = 1 / sqrt(sigma^2 + 1): back to the VP sample
        pred = self.model(x_t, t).to(x.dtype)
        if self.prediction_type != "eps":  # x0 and v: read x0_hat directly, alpha_bar = 1 / (sigma^2 + 1)
            return pred_to_x0(pred, x_t, 1 / (s ** 2 + 1), self.prediction_type)
        return x - s * pred  # EDM Table 1 (VP): c_skip = 1, c_out = -sigma


# ---- EDM's own preconditioning and loss -------------------------------------------------------

def edm_scalings(sigma: torch.Tensor, sigma_data: float = 0.5):
    """EDM's preconditioning (Table 1): c_skip, c_out, c_in, c_noise, each of sigma's shape."""
    c_skip = sigma_data ** 2 / (sigma ** 2 + sigma_data ** 2)  # EDM Table 1: c_skip
    c_out = sigma * sigma_data / (sigma ** 2 + sigma_data ** 2) ** 0.5  # EDM Table 1: c_out
    c_in = 1 / (sigma ** 2 + sigma_data ** 2) ** 0.5  # EDM Table 1: c_in
    c_noise = sigma.log() / 4  # EDM Table 1: c_noise
    return c_skip, c_out, c_in, c_noise


class EDMDenoiser:
    """D(x; sigma) = c_skip x + c_out F(c_in x; c_noise) (EDM Eq. 7), around a raw network
    ``net(x_in, c_noise)`` with c_noise of shape (B,). Called as ``denoiser(x, sigma)``, sigma a float or (B,)."""

    def __init__(self, net: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], sigma_data: float = 0.5):
        self.net, self.sigma_data = net, sigma_data

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        s = _per_example(sigma, x)  # (B, 1, ..., 1)
        c_skip, c_out, c_in, c_noise = edm_scalings(s, self.sigma_data)
        F_x = self.net(c_in * x, c_noise.reshape(-1)).to(x.dtype)
        return c_skip * x + c_out * F_x  # EDM Eq. 7


class EDMLoss:
    """EDM's training loss (Eq. 8 with Table 1's choices): E lambda(sigma) ||D(x0 + sigma eps; sigma) - x0||^2,
    ln sigma ~ N(P_mean, P_std^2), lambda = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2. Called as
    ``loss(denoiser, x0)``, ``denoiser(x, sigma)`` as ``EDMDenoiser``; returns the mean over the batch and
    the dimensions. With EDMDenoiser's c_out, lambda c_out^2 = 1: the network's own error has unit weight."""

    def __init__(self, P_mean: float = -1.2, P_std: float = 1.2, sigma_data: float = 0.5):
        self.P_mean, self.P_std, self.sigma_data = P_mean, P_std, sigma_data

    def weight(self, sigma: torch.Tensor) -> torch.Tensor:
        return (sigma ** 2 + self.sigma_data ** 2) / (sigma * self.sigma_data) ** 2  # EDM Table 1: lambda(sigma)

    def sample_sigma(self, x0: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B,) noise levels: ln sigma ~ N(P_mean, P_std^2) (EDM Table 1, "training")."""
        rnd = torch.randn(x0.shape[0], generator=generator, device=x0.device, dtype=x0.dtype)
        return (rnd * self.P_std + self.P_mean).exp()

    def __call__(self, denoiser: Denoiser, x0: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        sigma = self.sample_sigma(x0, generator)  # (B,), drawn first, then the noise (as NVlabs/edm)
        noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        s = _per_example(sigma, x0)  # (B, 1, ..., 1)
        D = denoiser(x0 + s * noise, sigma)
        return (self.weight(s) * (D - x0) ** 2).mean()  # EDM Eq. 8


def gaussian_denoiser(mean: float, std: float) -> Denoiser:
    """The ideal denoiser E[x0 | x] for data x0 ~ N(mean, std^2 I): mean + std^2 / (std^2 + sigma^2) (x - mean)."""
    def D(x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        s = _per_example(sigma, x)
        return mean + std ** 2 / (std ** 2 + s ** 2) * (x - mean)
    return D


def karras_sigmas(num_steps: int, sigma_min: float = 0.002, sigma_max: float = 80.0,
                  rho: float = 7.0) -> torch.Tensor:
    """EDM's noise levels (Eq. 5), sigma_max down to sigma_min, then 0: (num_steps + 1,) float64."""
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps must be an int >= 1, got {num_steps!r}")
    if not 0 < sigma_min < sigma_max or not math.isfinite(sigma_max) or rho <= 0:
        raise ValueError(f"need 0 < sigma_min < sigma_max < inf and rho > 0; got {sigma_min}, {sigma_max}, {rho}")
    ramp = torch.linspace(0, 1, num_steps, dtype=torch.float64)  # i / (N - 1)
    min_inv_rho, max_inv_rho = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sigmas = (max_inv_rho + ramp * (min_inv_rho - max_inv_rho)) ** rho  # EDM Eq. 5
    return torch.cat([sigmas, sigmas.new_zeros(1)])  # sigma_N = 0 (EDM Alg. 1)
