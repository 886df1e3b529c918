"""Classifier-free guidance for text (CFG, Ho & Salimans 2022, arXiv 2207.12598): captions dropped
to the empty caption while training, and the guided prediction of a text-conditioned denoiser.

Time convention: integer steps t in {0, ..., T-1}, t = 0 nearest the data (see process/schedules.py).
The denoiser is called as ``model(z_t, t, tokens)`` (``models.ldm.LatentDenoiser``); the guided
callable as ``guided(z_t, t)``, so every sampler of the course takes it.

Names -> symbols:
    tokens      c            (B, L) token ids of the captions
    empty                    the empty caption's tokens [BOS, pad, ...]: the null condition emptyset
    p_uncond    p_uncond     probability of dropping a caption during training (CFG Alg. 1)
    w           w            the guidance scale: eps_uncond + w (eps_cond - eps_uncond) (``guidance.guided_eps``)
    negative                 a negative prompt's tokens, in the unconditional prediction's place
"""

from __future__ import annotations

from typing import Callable

import torch

from .diffusion import PredictionLoss
from .guidance import GuidedModel, _check_probability, _check_scale, guided_eps
from .schedules import NoiseSchedule


def _empty_tokens(model, batch: int, length: int, device: torch.device) -> torch.Tensor:
    empty = getattr(model, "empty_tokens", None)
    if empty is None:
        raise ValueError("the model must say what the empty caption is: a LatentDenoiser (model.empty_tokens)")
    return empty(batch, length, device)


def drop_captions(tokens: torch.Tensor, p_uncond: float, empty: torch.Tensor, *, u: torch.Tensor | None = None,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Each caption (row of ``tokens`` (B, L)) replaced by ``empty`` (L,) with probability p_uncond (CFG Alg. 1).
    ``u``: (B,) uniform draws (else drawn from ``generator``); row i is dropped exactly when u_i < p_uncond."""
    _check_probability(p_uncond)
    if empty.shape != tokens.shape[1:]:
        raise ValueError(f"empty must have shape ({tokens.shape[1]},), got {tuple(empty.shape)}")
    if u is None:
        u = torch.rand(tokens.shape[0], device=tokens.device, generator=generator)
    return torch.where((u < p_uncond)[:, None], empty.to(tokens.device), tokens)  # CFG Alg. 1: c <- emptyset


class CaptionDropoutLoss(PredictionLoss):
    """PredictionLoss for a text-conditioned denoiser trained for classifier-free guidance (CFG Alg. 1):
    each caption becomes the empty caption with probability ``p_uncond``. Called as
    ``loss(model, (z0, tokens))``, the batches of ``latent.latent_batches``."""

    def __init__(self, schedule: NoiseSchedule, p_uncond: float = 0.1, target: str = "eps"):
        super().__init__(schedule, target)
        _check_probability(p_uncond)
        self.p_uncond = p_uncond

    def __call__(self, model: Callable[..., torch.Tensor], batch, generator: torch.Generator | None = None):
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise TypeError("the batch must be a pair (z0, tokens), as latent_batches yields")
        z0, tokens = batch
        empty = _empty_tokens(model, 1, tokens.shape[1], tokens.device)[0]  # (L,)
        tokens = drop_captions(tokens, self.p_uncond, empty, generator=generator)  # (B, L)
        return super().__call__(lambda z_t, t: model(z_t, t, tokens), z0, generator)


def expand_tokens(tokens: torch.Tensor, batch: int, name: str = "tokens") -> torch.Tensor:
    """A prompt's tokens (L,) or (1, L) repeated to (batch, L); (batch, L) as it is; else a clear error."""
    tokens = tokens[None] if tokens.ndim == 1 else tokens
    if tokens.ndim != 2 or tokens.shape[0] not in (1, batch):
        raise ValueError(f"{name} must have shape (L,) or ({batch}, L), got {tuple(tokens.shape)}")
    return tokens.expand(batch, -1)


def text_cfg_model(model: Callable[..., torch.Tensor], tokens: torch.Tensor, w: float | torch.Tensor, *,
                   negative: torch.Tensor | None = None) -> GuidedModel:
    """A classifier-free guided model ``guided(z_t, t) -> eps`` for any sampler: one forward pass of the
    doubled batch (z_t, z_t) with captions (tokens, empty caption), combined by ``guidance.guided_eps``
    (one pass of the batch alone at w = 1, the conditional prediction).

    Args:
        model: ``model(z_t, t, tokens)``, a LatentDenoiser.
        tokens: the prompt's tokens, (L,) for every sample or (B, L).
        w: the guidance scale (0 unconditional, 1 conditional), a float or a (B,) tensor.
        negative: a negative prompt's tokens, (L,) or (B, L), of the same L: its prediction takes the
            unconditional one's place, eps(neg) + w (eps(c) - eps(neg)), towards the prompt, away from it.
    """
    _check_scale(w)
    if negative is not None and negative.shape[-1] != tokens.shape[-1]:
        raise ValueError(f"negative and tokens must have the same length L; got {negative.shape[-1]} and "
                         f"{tokens.shape[-1]} (tokenize both with the same max_len)")

    def guided(z_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        B = z_t.shape[0]
        cond = expand_tokens(tokens.to(z_t.device), B)  # (B, L)
        if not isinstance(w, torch.Tensor) and float(w) == 1.0:
            return model(z_t, t, cond)  # one pass: the conditional prediction is the answer
        uncond = (expand_tokens(negative.to(z_t.device), B, "negative") if negative is not None
                  else _empty_tokens(model, B, cond.shape[1], z_t.device))  # (B, L)
        out = model(torch.cat([z_t, z_t]), torch.cat([t, t]), torch.cat([cond, uncond]))  # (2B, ...)
        eps_cond, eps_uncond = out.chunk(2)
        return guided_eps(eps_cond, eps_uncond, w)  # CFG Eq. 6 with w = 1 + w'

    return guided
