"""The text-conditioned latent denoiser of chapter 6: a text encoder and a U-Net with cross-attention,
as one module, so that the training loop, the EMA and the artifacts handle them as one model
(LDM, Rombach et al. 2022, Sec. 3.3 and Eq. 3: eps_theta(z_t, t, tau_theta(y))).

Time convention: integer steps t in {0, ..., T-1}, t = 0 nearest the data (see process/schedules.py).

Names -> symbols:
    z_t     z_t              the noised, scaled latent (B, C, h, w)
    t       t                (B,) steps
    tokens  y                (B, L) long token ids of the captions (``course_lib.data.captions.tokenize``)
    eps                      the prediction, z_t's shape
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from .text import TextEncoder, TextEncoderConfig, empty_tokens
from .unet import UNet, UNetConfig


@dataclass(frozen=True)
class LatentDenoiserConfig:
    """The two sub-configs; the U-Net's ``context_dim`` must be the text encoder's ``width``."""

    text: TextEncoderConfig
    unet: UNetConfig

    def __post_init__(self) -> None:
        if self.unet.context_dim != self.text.width:
            raise ValueError(f"unet.context_dim ({self.unet.context_dim}) must equal the text encoder's width "
                             f"({self.text.width})")

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> LatentDenoiserConfig:
        """The config back from ``asdict`` (an artifact's JSON, where tuples became lists)."""
        def fields(d: dict[str, Any]) -> dict[str, Any]:
            return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(TextEncoderConfig(**fields(config["text"])), UNetConfig(**fields(config["unet"])))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class LatentDenoiser(nn.Module):
    """eps_theta(z_t, t, tau_theta(y)), called as ``model(z_t, t, tokens)``."""

    def __init__(self, config: LatentDenoiserConfig):
        super().__init__()
        self.config = config
        self.text = TextEncoder(config.text)
        self.unet = UNet(config.unet)

    def forward(self, z_t: torch.Tensor, t: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.ndim != 2 or tokens.shape[0] != z_t.shape[0]:
            raise ValueError(f"tokens must have shape ({z_t.shape[0]}, L), one caption per latent; "
                             f"got {tuple(tokens.shape)}")
        context, mask = self.text(tokens)  # (B, L, D), (B, L)
        return self.unet(z_t, t, context=context.to(z_t.dtype), context_mask=mask)  # LDM Eq. 3

    def empty_tokens(self, batch: int, length: int | None = None, device: torch.device | str | None = None):
        """The empty caption [BOS, pad, ...] (the null condition of classifier-free guidance): (batch, L) long."""
        device = device if device is not None else self.text.pos_emb.device
        return empty_tokens(self.config.text, batch, length, device)
