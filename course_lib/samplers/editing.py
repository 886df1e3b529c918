"""Editing with a trained diffusion model, in pixel or latent space: SDEdit image-to-image (Meng et al.
2022, arXiv 2108.01073) and inpainting by blending in the known region at every step (RePaint, Lugmayr et
al. 2022, arXiv 2201.09865, without its resampling; as diffusers' legacy inpainting pipeline).

Time convention: integer steps t in {0, ..., T-1}, t = 0 nearest the data (see process/schedules.py). The
samplers visit the steps of ``samplers.ddim.timesteps`` (noisiest first) with DDIM updates; the step
after t is t - T // N, as in ``ddim_sample``. The model is called as ``model(x_t, t)`` (a guided model
from ``text_guidance.text_cfg_model`` is one).

Names -> symbols:
    x0         x_0 (SDEdit's x^(g))   the image (or latent) to edit
    strength   t_0 in SDEdit          how far to noise it: 0 keeps it, 1 starts from pure noise
    known      m                       (B or 1, 1 or C, H, W) 1 where x0 is kept, 0 where the model fills in
    x_known    x_{t-1}^known (RePaint Eq. 8, Alg. 1)   x0 noised to the step the update lands on
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from ..process.diffusion import add_noise, check_prediction_type
from .ddim import _as_steps, _batch, ddim_step
from ..process.schedules import NoiseSchedule

Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def img2img_timesteps(timesteps: Sequence[int] | torch.Tensor, strength: float) -> torch.Tensor:
    """The tail of ``timesteps`` that SDEdit runs at ``strength`` in [0, 1], diffusers' rule
    (StableDiffusionImg2ImgPipeline.get_timesteps): init = min(int(N strength), N), the last ``init``
    steps. Empty at strength 0 (nothing to do), all N at strength 1."""
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be a number in [0, 1], got {strength!r}")
    steps = torch.as_tensor(timesteps)
    N = steps.shape[0]
    init = min(int(N * strength), N)
    return steps[max(N - init, 0):]


@torch.no_grad()
def sdedit(model: Model, schedule: NoiseSchedule, x0: torch.Tensor, timesteps: Sequence[int], strength: float,
           noise: torch.Tensor, eta: float = 0.0, generator: torch.Generator | None = None,
           prediction_type: str = "eps") -> torch.Tensor:
    """SDEdit (Meng et al. 2022, Alg. 1 with DDIM steps): noise x0 to the first step that ``strength``
    selects (``img2img_timesteps``), then denoise through the remaining steps.

    Args:
        x0: the image or latent to edit, (B, ...); its device and dtype are used throughout.
        timesteps: the N steps of a full run, noisiest first, e.g. ``timesteps(1000, 50)``.
        strength: 0 returns x0, 1 ignores it (sampling from pure noise at the first step).
        noise: standard Gaussian noise of x0's shape, added once at the start.
        eta: DDIM's noise scale; > 0 draws one torch.randn per step from ``generator``.
        prediction_type: what the model predicts, "eps", "x0" or "v".
    """
    check_prediction_type(prediction_type)
    steps = img2img_timesteps(timesteps, strength)
    if steps.numel() == 0:
        return x0
    stride = schedule.num_steps // len(timesteps)
    x = add_noise(schedule, x0, int(steps[0]), noise)  # SDEdit: x(t0) ~ N(sqrt(alpha_bar) x0, (1 - alpha_bar) I)
    for t in _as_steps(steps, schedule.num_steps):
        pred = model(x, _batch(t, x)).to(x.dtype)
        z = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype) if eta > 0 else None
        x = ddim_step(schedule, pred, t, t - stride, x, eta=eta, noise=z, prediction_type=prediction_type)  # DDIM Eq. 12
    return x


@torch.no_grad()
def inpaint(model: Model, schedule: NoiseSchedule, x0: torch.Tensor, known: torch.Tensor, x_T: torch.Tensor,
            timesteps: Sequence[int], eta: float = 0.0, generator: torch.Generator | None = None,
            prediction_type: str = "eps") -> torch.Tensor:
    """Inpainting by blending (RePaint Alg. 1 without resampling, U = 1): after each DDIM step to t_prev,
    the known region is replaced by x0 noised to t_prev with fresh noise, so at the data end it is x0 exactly.

    diffusers' legacy inpainting pipeline blends the same way but noises x0 to the step just taken
    (t, not t_prev) with one noise draw for all steps, so its known region ends slightly noisy.

    Args:
        x0: the image or latent whose known region is kept, (B, ...).
        known: 1 (or True) where x0 is kept, 0 where the model fills in; broadcastable to x0.
        x_T: the starting noise, x0's shape.
        timesteps: the N steps to visit, noisiest first.
        eta: DDIM's noise scale. The draws from ``generator``: per step, the known region's noise, then
            (eta > 0) the DDIM noise.
        prediction_type: what the model predicts, "eps", "x0" or "v".
    """
    check_prediction_type(prediction_type)
    if x_T.shape != x0.shape:
        raise ValueError(f"x_T must have x0's shape {tuple(x0.shape)}, got {tuple(x_T.shape)}")
    try:
        m = torch.broadcast_to(known, x0.shape).to(x0.device, x0.dtype)  # (B, ...) 1 = known
    except RuntimeError as err:
        raise ValueError(f"known {tuple(known.shape)} must broadcast to x0's shape {tuple(x0.shape)}") from err
    steps = _as_steps(timesteps, schedule.num_steps)
    stride = schedule.num_steps // len(steps)
    x = x_T
    for t in steps:
        pred = model(x, _batch(t, x)).to(x.dtype)
        z_known = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        z = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype) if eta > 0 else None
        x = ddim_step(schedule, pred, t, t - stride, x, eta=eta, noise=z,  # RePaint Eq. 9 as a DDIM step (Eq. 12)
                      prediction_type=prediction_type)
        x_known = add_noise(schedule, x0, t - stride, z_known) if t - stride >= 0 else x0  # RePaint Eq. 8
        x = m * x_known + (1 - m) * x  # RePaint Eq. 10: known region from x0, the rest from the model
    return x
