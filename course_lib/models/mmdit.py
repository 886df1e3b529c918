"""The MMDiT block of Stable Diffusion 3 (Esser et al. 2024, arXiv 2403.03206, Sec. 4 and Fig. 2b), and a
small text-conditioned denoiser built from it.

Time convention: integer steps t in {0, ..., T-1}, t = 0 nearest the data (see process/schedules.py).

Two token streams, the image's and the context's (text encoder outputs), each with its own weights:
its own adaLN modulation from the conditioning vector c, its own qkv and output projections and its
own MLP. The one thing they share is attention: a single attention over the concatenation of both
sequences, so image tokens attend to text tokens and text tokens to image tokens (SD3 Sec. 4,
"joint attention"). With both streams' weights equal, a block is a DiT block over the concatenated
sequence (see the tests). As in DiT, every modulation starts at zero (adaLN-Zero), so each block is
the identity at init and the model outputs 0.

As in SD3, the context stream of the last block stops after its qkv (nothing reads its output).
Simplifications against SD3: c = t_emb + MLP(pooled context) with the pooled vector the masked mean
of the context tokens (SD3 pools CLIP's outputs); no QK-normalization (which SD3 adds to train stably
at high resolutions); fixed 2D sin-cos position embeddings (DiT's) for the image tokens, none for
the context tokens.

Names -> symbols:
    x_t           x_t     the noised input, (B, C, S, S)
    t             t       (B,) steps
    context       c_txt   (B, L, D_ctx) text-encoder outputs, L tokens of width D_ctx
    context_mask  -       (B, L) bool, True for real tokens, False for padding (never attended to)
    x, ctx        -       (B, N, D) image tokens, (B, L, D) context tokens, in the model's width D
    c             y       (B, D) the conditioning vector (SD3 Fig. 2b's y: timestep plus pooled text)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .dit import (MLP, FinalLayer, TimestepEmbedder, _layer_norm, merge_heads, modulate, sincos_pos_embed_2d,
                  split_heads, unpatchify)
from .unet import check_denoiser_inputs, check_float_input


@dataclass(frozen=True)
class MMDiTConfig:
    """Defaults: SD3's depth-24 model (its model family: width 64 * depth, depth heads) on 16-channel latents,
    with a T5-XXL-wide context (4096). ``tiny`` is the course's smoke size."""

    input_size: int = 32  # S
    patch_size: int = 2  # p
    in_channels: int = 16  # C
    hidden_size: int = 1536  # D = 64 * depth
    depth: int = 24
    num_heads: int = 24  # = depth
    mlp_ratio: float = 4.0
    context_dim: int = 4096  # D_ctx
    frequency_dim: int = 256

    def __post_init__(self) -> None:
        if self.input_size % self.patch_size:
            raise ValueError(f"patch_size {self.patch_size} must divide input_size {self.input_size}")
        if self.hidden_size % self.num_heads or self.hidden_size % 4:
            raise ValueError(f"hidden_size {self.hidden_size} must be a multiple of 4 and of "
                             f"num_heads {self.num_heads}")

    @property
    def grid_size(self) -> int:
        return self.input_size // self.patch_size

    @classmethod
    def sd3(cls, depth: int, **overrides) -> MMDiTConfig:
        """SD3's model family, indexed by depth d: width 64 d, d heads (d = 24 is SD3 Medium's 2B model)."""
        return cls(**{"depth": depth, "hidden_size": 64 * depth, "num_heads": depth, **overrides})

    @classmethod
    def tiny(cls, **overrides) -> MMDiTConfig:
        """The smoke profile (CPU): 2 blocks of width 64 over 3-channel 32 x 32 images, p = 4."""
        sizes = dict(input_size=32, patch_size=4, in_channels=3, hidden_size=64, depth=2, num_heads=2, context_dim=32)
        return cls(**{**sizes, **overrides})


def joint_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                    key_mask: torch.Tensor | None = None) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v over the joint sequence, q, k, v (B, heads, N + L, d); ``key_mask`` (B, N + L)
    bool, False for keys no query may attend to. Returns (B, heads, N + L, d)."""
    mask = None if key_mask is None else key_mask[:, None, None, :]  # (B, 1, 1, N + L), broadcast over heads, queries
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


class Stream(nn.Module):
    """One stream's weights in an MMDiT block: a DiT block's, with the attention split into qkv and proj.
    ``pre_only``: only what feeds the joint attention (SD3's context stream in the last block, whose
    output nothing reads)."""

    def __init__(self, dim: int, mlp_ratio: float, pre_only: bool = False):
        super().__init__()
        self.pre_only = pre_only
        self.norm1, self.qkv = _layer_norm(dim), nn.Linear(dim, 3 * dim)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, (2 if pre_only else 6) * dim))
        if not pre_only:
            self.proj = nn.Linear(dim, dim)
            self.norm2, self.mlp = _layer_norm(dim), MLP(dim, mlp_ratio)

    def pre_attention(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """qkv(modulate(LN(x))) (B, n, 3D), and the modulation left for ``post_attention``."""
        shift_msa, scale_msa, *rest = self.adaLN_modulation(c).chunk(2 if self.pre_only else 6, dim=1)
        return self.qkv(modulate(self.norm1(x), shift_msa, scale_msa)), tuple(rest)

    def post_attention(self, x: torch.Tensor, h: torch.Tensor, mod: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """x + gate * proj(h), then the gated MLP branch, as in a DiT block (DiT Sec. 3.2, adaLN-Zero)."""
        gate_msa, shift_mlp, scale_mlp, gate_mlp = mod
        x = x + gate_msa[:, None] * self.proj(h)
        return x + gate_mlp[:, None] * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))


class MMDiTBlock(nn.Module):
    """Two streams, one joint attention over [image tokens; context tokens] (SD3 Fig. 2b). With
    ``context_pre_only`` (the last block) the context stream stops after its qkv and the block returns None for it."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, context_pre_only: bool = False):
        super().__init__()
        self.num_heads = num_heads
        self.x_stream, self.ctx_stream = Stream(dim, mlp_ratio), Stream(dim, mlp_ratio, pre_only=context_pre_only)

    def forward(self, x: torch.Tensor, ctx: torch.Tensor, c: torch.Tensor,
                key_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B, N, D), ctx (B, L, D), c (B, D), key_mask (B, N + L) bool or None -> new (x, ctx)."""
        N = x.shape[1]
        qkv_x, mod_x = self.x_stream.pre_attention(x, c)  # (B, N, 3D)
        qkv_ctx, mod_ctx = self.ctx_stream.pre_attention(ctx, c)  # (B, L, 3D)
        q, k, v = split_heads(torch.cat([qkv_x, qkv_ctx], dim=1), self.num_heads)  # each (B, heads, N + L, d)
        h = merge_heads(joint_attention(q, k, v, key_mask))  # SD3 Sec. 4: one attention over both; (B, N + L, D)
        x = self.x_stream.post_attention(x, h[:, :N], mod_x)
        return x, None if self.ctx_stream.pre_only else self.ctx_stream.post_attention(ctx, h[:, N:], mod_ctx)


class MMDiT(nn.Module):
    """eps_theta(x_t, t, context), called as ``model(x_t, t, context, context_mask=None)``; the output has
    x_t's shape. ``context`` (B, L, D_ctx) are the text encoder's token features; ``context_mask`` (B, L)
    bool marks the real tokens (padding is never attended to nor pooled)."""

    def __init__(self, config: MMDiTConfig = MMDiTConfig()):
        super().__init__()
        self.config = c = config
        D = c.hidden_size
        self.x_embedder = nn.Conv2d(c.in_channels, D, kernel_size=c.patch_size, stride=c.patch_size)
        self.register_buffer("pos_embed", sincos_pos_embed_2d(D, c.grid_size).float()[None], persistent=False)
        self.context_embedder = nn.Linear(c.context_dim, D)  # (B, L, D_ctx) -> (B, L, D)
        self.pooled_embedder = nn.Sequential(nn.Linear(c.context_dim, D), nn.SiLU(), nn.Linear(D, D))
        self.t_embedder = TimestepEmbedder(D, c.frequency_dim)
        self.blocks = nn.ModuleList(MMDiTBlock(D, c.num_heads, c.mlp_ratio, context_pre_only=i == c.depth - 1)
                                    for i in range(c.depth))
        self.final_layer = FinalLayer(D, c.patch_size, c.in_channels)
        self.initialize_weights()

    @torch.no_grad()
    def initialize_weights(self) -> None:
        """DiT's initialization: Xavier-uniform linears, N(0, 0.02) time MLP, zero modulations and final linear."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)
        modulations = [s.adaLN_modulation[-1] for b in self.blocks for s in (b.x_stream, b.ctx_stream)]
        for layer in [*modulations, self.final_layer.adaLN_modulation[-1], self.final_layer.linear]:
            nn.init.zeros_(layer.weight)  # adaLN-Zero: every block starts as the identity
            nn.init.zeros_(layer.bias)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, context: torch.Tensor,
                context_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x_t (B, C, S, S), t (B,), context (B, L, D_ctx), context_mask (B, L) bool or None -> (B, C, S, S)."""
        self._check_inputs(x_t, t, context, context_mask)
        B, L = context.shape[:2]
        if context_mask is None:
            context_mask = torch.ones(B, L, dtype=torch.bool, device=context.device)
        w = context_mask.to(context.dtype)[..., None]  # (B, L, 1)
        pooled = (context * w).sum(1) / w.sum(1).clamp(min=1)  # (B, D_ctx), the masked mean
        c = self.t_embedder(t, x_t.dtype) + self.pooled_embedder(pooled)  # (B, D)
        x = self.x_embedder(x_t).flatten(2).transpose(1, 2) + self.pos_embed  # (B, N, D)
        ctx = self.context_embedder(context)  # (B, L, D)
        key_mask = torch.cat([torch.ones(x.shape[:2], dtype=torch.bool, device=x.device), context_mask], dim=1)
        for block in self.blocks:
            x, ctx = block(x, ctx, c, key_mask)
        return unpatchify(self.final_layer(x, c), self.config.patch_size, self.config.in_channels)

    def _check_inputs(self, x_t, t, context, context_mask) -> None:
        c = self.config
        dtype = self.x_embedder.weight.dtype
        check_denoiser_inputs(c, x_t, t, None, c.input_size, dtype)
        B = x_t.shape[0]
        if context.ndim != 3 or context.shape[0] != B or context.shape[2] != c.context_dim:
            raise ValueError(f"context must have shape ({B}, L, {c.context_dim}), got {tuple(context.shape)}")
        check_float_input("context", context, dtype)
        if context_mask is not None and (context_mask.dtype != torch.bool or context_mask.shape != context.shape[:2]):
            raise ValueError(f"context_mask must be a bool tensor of shape {tuple(context.shape[:2])} (True = a real "
                             f"token), got {context_mask.dtype} {tuple(context_mask.shape)}")
