"""The U-Net's building blocks: residual blocks with a time embedding, self- and cross-attention,
down- and up-sampling (DDPM App. B; cross-attention as in LDM).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

if TYPE_CHECKING:
    from .unet import UNetConfig


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(groups, channels), channels)


def _zero(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ResBlock(nn.Module):
    """skip(x) + conv(drop(SiLU(GN(conv(SiLU(GN(x))) + Linear(SiLU(emb)))))), a 1x1 skip when the width changes."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, dropout: float, groups: int):
        super().__init__()
        self.norm1, self.conv1 = _norm(c_in, groups), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb_proj = nn.Linear(emb_dim, c_out)
        self.norm2, self.dropout = _norm(c_out, groups), nn.Dropout(dropout)
        self.conv2 = _zero(nn.Conv2d(c_out, c_out, 3, padding=1))
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (B, c_out, H, W)
        h = h + self.emb_proj(F.silu(emb))[:, :, None, None]  # additive time conditioning (DDPM)
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """x + proj(softmax(q k^T / sqrt(d)) v) over the H*W positions as tokens, [q, k, v] = Linear(GN(x))."""

    def __init__(self, channels: int, num_heads: int, groups: int):
        super().__init__()
        if channels % num_heads:
            raise ValueError(f"{num_heads} heads do not divide {channels} channels")
        self.num_heads = num_heads
        self.norm = _norm(channels, groups)
        self.qkv = nn.Linear(channels, 3 * channels)  # output rows: q, then k, then v; each head-major
        self.proj = _zero(nn.Linear(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)  # (B, H*W, C); a view for channels_last x
        qkv = self.qkv(tokens).reshape(B, H * W, 3, self.num_heads, C // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, H*W, d), d contiguous (fused kernels need it)
        h = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(d)) v, in the autocast dtype
        h = self.proj(h.transpose(1, 2).reshape(B, H * W, C))  # (B, H*W, C)
        return x + h.transpose(1, 2).reshape(B, C, H, W)


class CrossAttention(nn.Module):
    """x + proj(softmax(q k^T / sqrt(d)) v) with q = Linear(GN(x)) over the H*W positions and k, v =
    Linear(context) over the L tokens (LDM Eq. 3); tokens where ``context_mask`` is False get no weight."""

    def __init__(self, channels: int, context_dim: int, num_heads: int, groups: int):
        super().__init__()
        if channels % num_heads:
            raise ValueError(f"{num_heads} heads do not divide {channels} channels")
        self.num_heads = num_heads
        self.norm = _norm(channels, groups)
        self.q = nn.Linear(channels, channels)  # W_Q (LDM Eq. 3)
        self.k = nn.Linear(context_dim, channels)  # W_K
        self.v = nn.Linear(context_dim, channels)  # W_V
        self.proj = _zero(nn.Linear(channels, channels))

    def forward(self, x: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor | None = None) -> torch.Tensor:
        B, C, H, W = x.shape
        L, heads, d = context.shape[1], self.num_heads, C // self.num_heads
        tokens = self.norm(x).flatten(2).transpose(1, 2)  # (B, H*W, C)
        q = self.q(tokens).reshape(B, H * W, heads, d).transpose(1, 2)  # (B, heads, H*W, d)
        k = self.k(context).reshape(B, L, heads, d).transpose(1, 2)  # (B, heads, L, d)
        v = self.v(context).reshape(B, L, heads, d).transpose(1, 2)
        mask = None if context_mask is None else context_mask[:, None, None, :]  # (B, 1, 1, L), True = attend
        h = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # LDM Eq. 3
        h = self.proj(h.transpose(1, 2).reshape(B, H * W, C))  # (B, H*W, C)
        return x + h.transpose(1, 2).reshape(B, C, H, W)


class Block(nn.Module):
    """A residual block, then self-attention if this resolution has it, then cross-attention to the
    context if the model has one (``context_dim``)."""

    def __init__(self, c_in: int, c_out: int, config: UNetConfig, attention: bool):
        super().__init__()
        c = config
        self.res = ResBlock(c_in, c_out, c.emb_dim, c.dropout, c.norm_groups)
        self.attn = SelfAttention(c_out, c.num_heads(c_out), c.norm_groups) if attention else nn.Identity()
        self.cross = None  # not a submodule: a model without context keeps chapters 3-5's parameter names
        if attention and c.context_dim is not None:
            self.cross = CrossAttention(c_out, c.context_dim, c.num_heads(c_out), c.norm_groups)

    def forward(self, x: torch.Tensor, emb: torch.Tensor, context: torch.Tensor | None = None,
                context_mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.attn(self.res(x, emb))
        return h if self.cross is None else self.cross(h, context, context_mask)


class Downsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        return self.conv(x)  # (B, C, H/2, W/2)


class Upsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))  # (B, C, 2H, 2W)
