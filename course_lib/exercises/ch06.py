"""Chapter 6 exercises: cross-attention with a padding mask, and which steps SDEdit runs.

Student functions take plain tensors and numbers: queries q (B, heads, N, d) from the image's
positions, keys k and values v (B, heads, L, d) from the caption's L tokens, a mask (B, L) bool that is
True for the tokens to attend to (False: padding); the steps of a full sampling run, noisiest first,
as a (N,) long tensor, and a strength in [0, 1].
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from ..samplers.editing import img2img_timesteps
from ..samplers.ddim import timesteps
from .core import check_against_reference


def _masked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])  # LDM Eq. 3


def check_cross_attention(student_cross_attention: Callable) -> None:
    """Exercise 6.1: ``cross_attention(q, k, v, mask) -> (B, heads, N, d)``,
    softmax(q k^T / sqrt(d)) v over the tokens where ``mask`` is True (LDM Eq. 3)."""
    g = torch.Generator().manual_seed(0)
    cases = []
    for B, heads, N, L, d, lengths in [(2, 1, 4, 3, 8, (3, 3)), (3, 2, 16, 8, 4, (1, 5, 8)), (2, 4, 64, 8, 16, (2, 7))]:
        mask = torch.arange(L)[None, :] < torch.tensor(lengths)[:, None]  # (B, L): the first `length` tokens
        cases.append({"q": torch.randn(B, heads, N, d, generator=g, dtype=torch.float64),
                      "k": torch.randn(B, heads, L, d, generator=g, dtype=torch.float64),
                      "v": torch.randn(B, heads, L, d, generator=g, dtype=torch.float64), "mask": mask})
    check_against_reference(
        "cross_attention", student_cross_attention, _masked_attention, cases,
        hint="scores = q @ k.transpose(-2, -1) / sqrt(d), shape (B, heads, N, L); set the scores of padded "
             "tokens to -inf before the softmax (mask[:, None, None, :] broadcasts over heads and queries), "
             "softmax over the last dimension (the tokens), then multiply by v. Masking after the softmax "
             "leaves weights that no longer sum to 1.",
        rtol=1e-9, atol=1e-10)


def check_img2img_steps(student_img2img_steps: Callable) -> None:
    """Exercise 6.2: ``img2img_steps(steps, strength) -> the tail of steps that SDEdit runs``: the last
    min(int(N * strength), N) of the N steps (diffusers' img2img rule)."""
    cases = []
    for T, N, strength in [(1000, 50, 0.6), (1000, 50, 1.0), (1000, 50, 0.0), (1000, 10, 0.35), (1000, 20, 0.999)]:
        cases.append({"steps": timesteps(T, N, "leading"), "strength": strength})
    check_against_reference(
        "img2img_steps", student_img2img_steps, lambda steps, strength: img2img_timesteps(steps, strength), cases,
        hint="strength s keeps the last int(N * s) steps of the N (noisiest first): steps[N - int(N * s):]. "
             "Strength 0 runs no step (the image comes back unchanged), strength 1 runs all of them "
             "(from almost pure noise). Round down, as diffusers does: int(), not round().",
        rtol=0, atol=0)
