"""Samplers on EDM's denoiser D(x; sigma) (Karras et al. 2022): Heun with churn (EDM Alg. 1 and 2),
Euler, Euler ancestral and DPM-Solver++(2M), written as k-diffusion's ``sample_*`` functions.

Time convention: the course's integer steps t in {0, ..., T-1} (t = 0 nearest the data) do not appear
here: these samplers walk down a list of noise levels sigma_0 > sigma_1 > ... > sigma_N = 0, e.g.
``karras_sigmas`` (process/edm.py), noisiest first, and work on EDM's x = x0 + sigma eps. A trained
VP model enters through ``VPDenoiser`` (process/edm.py), which maps each sigma back to its step t and
x to x_t = x / sqrt(sigma^2 + 1). The samplers in samplers/ode.py are the same solvers on the steps t.

Names -> symbols:
    denoiser      D(x; sigma), called as ``denoiser(x, sigma)`` with sigma a (B,) tensor
    sigmas        sigma_0 > ... > sigma_N (= 0), the noise levels visited; N steps
    x_T           the start: N(0, sigma_0^2 I) noise, e.g. ``sigmas[0] * torch.randn(...)``
    d             (x - D(x; sigma)) / sigma = dx/dsigma     the ODE's slope (EDM Eq. 3 with sigma(t) = t)
    gamma         gamma_i        churn: the fraction by which sigma is raised before the step (EDM Alg. 2)
    sigma_hat     sigma_i (1 + gamma_i), the raised noise level (EDM's t_hat_i)
    sigma_up, sigma_down   the noise added and the level stepped down to by an ancestral step
    lam           lambda = -log sigma                        (DPM-Solver's log-SNR / 2, alpha = 1)
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from ..process.edm import Denoiser


def _as_sigmas(sigmas: Sequence[float] | torch.Tensor) -> list[float]:
    """Check the noise levels (1-D, at least two, strictly decreasing, non-negative) and return floats."""
    s = torch.as_tensor(sigmas, dtype=torch.float64)
    if s.ndim != 1 or s.numel() < 2:
        raise ValueError("sigmas must be a 1-D sequence of at least two noise levels, e.g. karras_sigmas(18)")
    out = [float(v) for v in s]
    if any(b >= a for a, b in zip(out, out[1:])) or out[-1] < 0 or not math.isfinite(out[0]):
        raise ValueError(f"sigmas must be finite, strictly decreasing and end at >= 0 (noisiest first); got {out}")
    return out


def _D(denoiser: Denoiser, x: torch.Tensor, sigma: float) -> torch.Tensor:
    return denoiser(x, torch.full((x.shape[0],), sigma, dtype=x.dtype, device=x.device)).to(x.dtype)


def _noise(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)


def _churn(x: torch.Tensor, sigma: float, N: int, S_churn: float, S_tmin: float, S_tmax: float,
           S_noise: float, generator: torch.Generator | None) -> tuple[torch.Tensor, float]:
    """EDM Alg. 2's first half: raise the noise level from sigma to sigma_hat = (1 + gamma) sigma by adding
    fresh noise. One draw per step whenever S_churn > 0, used or not, as EDM's and k-diffusion's loops do."""
    if S_churn <= 0:
        return x, sigma
    gamma = min(S_churn / N, 2 ** 0.5 - 1) if S_tmin <= sigma <= S_tmax else 0.0  # EDM Alg. 2: gamma_i
    eps = _noise(x, generator) * S_noise  # EDM Alg. 2: eps_i ~ N(0, S_noise^2 I)
    sigma_hat = sigma * (gamma + 1)  # EDM Alg. 2: t_hat_i = t_i + gamma_i t_i
    if gamma > 0:
        x = x + eps * (sigma_hat ** 2 - sigma ** 2) ** 0.5  # EDM Alg. 2: x_hat_i
    return x, sigma_hat


def _check_churn(S_churn: float, S_noise: float) -> None:
    if S_churn < 0 or S_noise < 0:
        raise ValueError(f"S_churn and S_noise must be >= 0, got {S_churn} and {S_noise}")


@torch.no_grad()
def edm_heun_sample(denoiser: Denoiser, x_T: torch.Tensor, sigmas: Sequence[float] | torch.Tensor,
                    S_churn: float = 0.0, S_tmin: float = 0.0, S_tmax: float = float("inf"), S_noise: float = 1.0,
                    generator: torch.Generator | None = None, keep_trajectory: bool = False):
    """EDM's sampler: Heun's method on dx/dsigma = (x - D(x; sigma)) / sigma (EDM Alg. 1), with optional
    churn (EDM Alg. 2), as k-diffusion's ``sample_heun``. The last step, to sigma = 0, stays Euler:
    2N - 1 denoiser calls.

    Args:
        denoiser: ``denoiser(x, sigma)`` -> x0_hat, e.g. ``VPDenoiser(model, schedule)``.
        x_T: (B, ...) noise at sigmas[0]; its device and dtype are used throughout.
        sigmas: (N + 1,) noise levels, noisiest first, e.g. ``karras_sigmas(18)``.
        S_churn, S_tmin, S_tmax, S_noise: EDM Alg. 2's churn; S_churn = 0 (default) is Alg. 1, deterministic.
        generator: for the churn's noise.
        keep_trajectory: also return the states (N + 1, B, ...), x_T first.
    """
    _check_churn(S_churn, S_noise)
    sigmas = _as_sigmas(sigmas)
    N, x, kept = len(sigmas) - 1, x_T, [x_T]
    for i in range(N):
        x, sigma_hat = _churn(x, sigmas[i], N, S_churn, S_tmin, S_tmax, S_noise, generator)
        d = (x - _D(denoiser, x, sigma_hat)) / sigma_hat  # EDM Alg. 1, line 4 (Alg. 2 at sigma_hat)
        dt = sigmas[i + 1] - sigma_hat
        x_next = x + dt * d  # EDM Alg. 1, line 5: the Euler step
        if sigmas[i + 1] != 0:  # EDM Alg. 1, lines 6-8: correct with the slope at the end
            d_next = (x_next - _D(denoiser, x_next, sigmas[i + 1])) / sigmas[i + 1]  # EDM Alg. 1, line 7
            x_next = x + dt * (0.5 * d + 0.5 * d_next)  # EDM Alg. 1, line 8: the trapezoid rule
        x = x_next
        kept.append(x)
    return (x, torch.stack(kept)) if keep_trajectory else x


@torch.no_grad()
def edm_euler_sample(denoiser: Denoiser, x_T: torch.Tensor, sigmas: Sequence[float] | torch.Tensor,
                     S_churn: float = 0.0, S_tmin: float = 0.0, S_tmax: float = float("inf"), S_noise: float = 1.0,
                     generator: torch.Generator | None = None, keep_trajectory: bool = False):
    """Euler's method on the same ODE, with the same optional churn (EDM Alg. 2 with Euler steps only),
    as k-diffusion's ``sample_euler``: N denoiser calls. Arguments as ``edm_heun_sample``."""
    _check_churn(S_churn, S_noise)
    sigmas = _as_sigmas(sigmas)
    N, x, kept = len(sigmas) - 1, x_T, [x_T]
    for i in range(N):
        x, sigma_hat = _churn(x, sigmas[i], N, S_churn, S_tmin, S_tmax, S_noise, generator)
        d = (x - _D(denoiser, x, sigma_hat)) / sigma_hat  # EDM Alg. 1, line 4
        x = x + (sigmas[i + 1] - sigma_hat) * d  # EDM Alg. 1, line 5: the Euler step
        kept.append(x)
    return (x, torch.stack(kept)) if keep_trajectory else x


def ancestral_step(sigma_from: float, sigma_to: float, eta: float = 1.0) -> tuple[float, float]:
    """(sigma_down, sigma_up) of an ancestral step from sigma_from to sigma_to: a deterministic step down to
    sigma_down, then fresh noise of std sigma_up, with sigma_down^2 + sigma_up^2 = sigma_to^2. At eta = 1,
    sigma_up^2 = sigma_to^2 (sigma_from^2 - sigma_to^2) / sigma_from^2, the DDPM posterior's variance
    (DDPM Eq. 7 in sigma form; DDIM Eq. 16's sigma with eta); eta = 0 is the ODE step."""
    if not eta:
        return sigma_to, 0.0
    sigma_up = min(sigma_to, eta * (sigma_to ** 2 * (sigma_from ** 2 - sigma_to ** 2) / sigma_from ** 2) ** 0.5)
    return (sigma_to ** 2 - sigma_up ** 2) ** 0.5, sigma_up


@torch.no_grad()
def edm_euler_ancestral_sample(denoiser: Denoiser, x_T: torch.Tensor, sigmas: Sequence[float] | torch.Tensor,
                               eta: float = 1.0, S_noise: float = 1.0, generator: torch.Generator | None = None,
                               keep_trajectory: bool = False):
    """Ancestral sampling with Euler steps, as k-diffusion's ``sample_euler_ancestral`` (and diffusers'
    EulerAncestralDiscreteScheduler): an Euler step down to sigma_down, then noise of std sigma_up
    (``ancestral_step``), none on the last step to sigma = 0. One draw per step but the last.
    Arguments as ``edm_heun_sample``; ``eta`` scales the noise (1: DDPM-like, 0: Euler)."""
    if eta < 0 or S_noise < 0:
        raise ValueError(f"eta and S_noise must be >= 0, got {eta} and {S_noise}")
    sigmas = _as_sigmas(sigmas)
    x, kept = x_T, [x_T]
    for i in range(len(sigmas) - 1):
        denoised = _D(denoiser, x, sigmas[i])
        sigma_down, sigma_up = ancestral_step(sigmas[i], sigmas[i + 1], eta)
        d = (x - denoised) / sigmas[i]  # EDM Alg. 1, line 4
        x = x + d * (sigma_down - sigmas[i])  # the Euler step, down to sigma_down
        if sigmas[i + 1] > 0:
            x = x + _noise(x, generator) * S_noise * sigma_up  # fresh noise back up to sigma_{i+1}
        kept.append(x)
    return (x, torch.stack(kept)) if keep_trajectory else x


@torch.no_grad()
def edm_dpmpp_2m_sample(denoiser: Denoiser, x_T: torch.Tensor, sigmas: Sequence[float] | torch.Tensor,
                        keep_trajectory: bool = False):
    """DPM-Solver++(2M) (Lu et al. 2022, Alg. 2) on the noise levels ``sigmas``, as k-diffusion's
    ``sample_dpmpp_2m``: first order on the first step and on the last (to sigma = 0, where the update
    is D itself), second order in between, reusing the previous D. N denoiser calls. In EDM's x,
    alpha = 1, so lambda = -log sigma. Arguments as ``edm_heun_sample``."""
    sigmas = _as_sigmas(sigmas)
    x, kept, D_prev = x_T, [x_T], None
    for i in range(len(sigmas) - 1):
        D = _D(denoiser, x, sigmas[i])
        if sigmas[i + 1] == 0:
            x = D  # the first-order update with sigma_next = 0 (h = inf) returns D
        else:
            lam, lam_next = -math.log(sigmas[i]), -math.log(sigmas[i + 1])
            h = lam_next - lam
            if D_prev is None:
                D_hat = D  # first order: DPM-Solver++(1), which is DDIM
            else:
                r = (lam - (-math.log(sigmas[i - 1]))) / h  # h_{i-1} / h_i
                D_hat = (1 + 1 / (2 * r)) * D - (1 / (2 * r)) * D_prev  # DPM-Solver++ Alg. 2
            x = (sigmas[i + 1] / sigmas[i]) * x - math.expm1(-h) * D_hat  # DPM-Solver++ Alg. 2 (alpha = 1)
        D_prev = D
        kept.append(x)
    return (x, torch.stack(kept)) if keep_trajectory else x
