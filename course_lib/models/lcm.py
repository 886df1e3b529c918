"""The guidance-conditioned student of latent consistency distillation (LCM, Luo et al. 2023,
arXiv 2310.04378, Sec. 4.2): chapter 6's LatentDenoiser that also takes the guidance scale w, so one
network distils the teacher's guided trajectories for a whole range of w.

How w gets in (LCM's "w-condition", as diffusers' UNet2DConditionModel does it with ``time_cond_proj_dim``):
sinusoidal features of w (``guidance_embedding``, LCM's guidance-scale embedding) go through a linear map
``w_proj`` onto the width of the U-Net's sinusoidal time features and are added to them, just before the
time MLP: emb = MLP(sinusoidal(t) + W psi(w)). A forward pre-hook on ``unet.time_mlp``, held only for the
duration of one call, does the addition, so the wrapped LatentDenoiser's code, parameters and outputs are
chapter 6's. ``w_proj`` starts at zero (diffusers' starts random): at initialisation the student computes
exactly the teacher's conditional prediction, whatever w.

Time convention: integer steps t in {0, ..., T-1}, t = 0 nearest the data (see process/schedules.py).

Names -> symbols:
    w           w           the course's guidance scale (``guidance.guided_eps``: 1 conditional, > 1 guided)
    omega       omega       LCM's guidance weight w - 1 (LCM's eps = (1 + omega) eps_c - omega eps_u): what is embedded
    psi         psi(omega)  (B, w_embed_dim) sinusoidal features of 1000 omega (diffusers' get_guidance_scale_embedding)
    w_proj      W           Linear(w_embed_dim, base_channels), no bias, zero at init
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .ldm import LatentDenoiser


def guidance_embedding(omega: torch.Tensor, dim: int = 256) -> torch.Tensor:
    """Sinusoidal features of LCM's guidance weight omega (B,): [sin(1000 omega f_k), cos(1000 omega f_k)],
    f_k = 10000^(-k / (dim/2 - 1)), k = 0..dim/2-1, as diffusers' ``get_guidance_scale_embedding``
    (VDM's timestep features). (B, dim) float32."""
    if omega.ndim != 1:
        raise ValueError(f"omega must have shape (B,), got {tuple(omega.shape)}")
    if dim < 4 or dim % 2:
        raise ValueError(f"dim must be an even number >= 4, got {dim}")
    half = dim // 2
    step = torch.log(torch.tensor(10000.0)) / (half - 1)  # float32, as diffusers computes it (same rounding)
    freqs = torch.exp(torch.arange(half, dtype=torch.float32) * -step).to(omega.device)  # (half,)
    args = (omega.float() * 1000.0)[:, None] * freqs[None, :]  # (B, half)
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)  # (B, dim)


class GuidanceConditionedDenoiser(nn.Module):
    """eps_theta(z_t, w, c, t) of LCM Sec. 4.2, called as ``model(z_t, t, tokens, w)``: a LatentDenoiser
    (``denoiser``, called as chapter 6's ``denoiser(z_t, t, tokens)``) whose time features also get W psi(w - 1).

    Args:
        denoiser: the network to condition, used as it is (``from_teacher`` copies a teacher first).
        w_embed_dim: the width of psi (diffusers' LCM training script: 256).
    """

    def __init__(self, denoiser: LatentDenoiser, w_embed_dim: int = 256):
        super().__init__()
        self.denoiser, self.w_embed_dim = denoiser, w_embed_dim
        p = next(denoiser.parameters())
        self.w_proj = nn.Linear(w_embed_dim, denoiser.config.unet.base_channels, bias=False,
                                device=p.device, dtype=p.dtype)
        nn.init.zeros_(self.w_proj.weight)  # the student starts as the teacher

    @classmethod
    def from_teacher(cls, teacher: LatentDenoiser, w_embed_dim: int = 256) -> GuidanceConditionedDenoiser:
        """A trainable student initialised with a copy of the teacher's weights (LCM Alg. 1: theta <- teacher)."""
        student = cls(copy.deepcopy(teacher), w_embed_dim)
        return student.requires_grad_(True).train(teacher.training)

    def forward(self, z_t: torch.Tensor, t: torch.Tensor, tokens: torch.Tensor,
                w: torch.Tensor | float) -> torch.Tensor:
        """z_t (B, C, h, w), t (B,), tokens (B, L), w a float or (B,) guidance scales -> eps (B, C, h, w)."""
        w = torch.as_tensor(w, dtype=torch.float32, device=z_t.device).reshape(-1).expand(z_t.shape[0])
        cond = self.w_proj(guidance_embedding(w - 1.0, self.w_embed_dim).to(self.w_proj.weight.dtype))  # (B, base)

        def add_w(module, args):  # args = (sinusoidal(t),), (B, base_channels): the time MLP's input
            return (args[0] + cond.to(args[0].dtype),)  # LCM Sec. 4.2: the w-condition joins the time embedding

        hook = self.denoiser.unet.time_mlp.register_forward_pre_hook(add_w)
        try:
            return self.denoiser(z_t, t, tokens)
        finally:
            hook.remove()

    def empty_tokens(self, batch: int, length: int | None = None, device: torch.device | str | None = None):
        """The empty caption, as ``LatentDenoiser.empty_tokens``."""
        return self.denoiser.empty_tokens(batch, length, device)
