"""The Diffusion Transformer, DiT (Peebles & Xie 2023, arXiv 2212.09748): a ViT (Dosovitskiy et al.
2021) over patches of x_t, conditioned on t and the class through adaLN-Zero.

Time convention: integer steps t in {0, ..., T-1}, t = 0 nearest the data (see process/schedules.py).

Names -> symbols:
    x_t    x_t     the noised input, (B, C, S, S): CIFAR-10 pixels (3, 32, 32), or 4-channel latents
    t      t       (B,) steps
    y      y       (B,) labels in {0, ..., K-1}; K = num_classes is the learned null class (CFG)
    p      p       patch size: x_t becomes N = (S/p)^2 tokens (DiT Sec. 3.2, "Patchify", Fig. 4)
    D      d       hidden_size, the width of every token
    c      c       (B, D) the conditioning vector t_emb + y_emb (DiT Sec. 3.2)
    shift  beta    (B, D) per-channel shift regressed from c
    scale  gamma   (B, D) per-channel scale, applied as (1 + scale) so that 0 is the identity
    gate   alpha   (B, D) per-channel gate of each residual branch; zero at init ("adaLN-Zero")

Architecture (DiT Sec. 3.2, Fig. 3): a p x p conv with stride p embeds the patches ("patchify"),
plus fixed 2D sin-cos position embeddings; ``depth`` blocks, each x + gate * Attn(modulate(LN(x)))
then x + gate * MLP(modulate(LN(x))) with shift, scale, gate = Linear(SiLU(c)); a final adaLN
layer and a linear map from each token to its p x p x C patch ("unpatchify"). The modulation
linears and the final linear start at zero, so at init every block is the identity and the network
outputs 0. Epsilon prediction only: the output has C channels (DiT also learns the variance, with 2C).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .embeddings import sinusoidal_embedding
from .unet import check_denoiser_inputs

# DiT Table 1: layers N, hidden size d, heads
# name -> (depth, width, heads): DiT Table 1's S, B, L, XL; the course's XXS and XS (for a CPU, chapter 7's
# laptop profile) and tiny (the smoke profile)
DIT_SIZES = {"S": (12, 384, 6), "B": (12, 768, 12), "L": (24, 1024, 16), "XL": (28, 1152, 16),
             "XXS": (4, 128, 2), "XS": (6, 192, 3), "tiny": (2, 64, 2)}


@dataclass(frozen=True)
class DiTConfig:
    """Defaults: DiT-XL/2 on ImageNet 256 (32x32x4 latents, 1000 classes). Named sizes: ``DiTConfig.named("S/2")``,
    or ``small``, ``base``, ``large``, ``xlarge`` (DiT Table 1) and ``tiny`` (the smoke profile), each given p."""

    input_size: int = 32  # S, the side of x_t
    patch_size: int = 2  # p
    in_channels: int = 4  # C (also the output's)
    hidden_size: int = 1152  # D
    depth: int = 28  # N blocks
    num_heads: int = 16
    mlp_ratio: float = 4.0
    num_classes: int | None = 1000  # None: unconditional; int: label embedding + null class
    frequency_dim: int = 256  # width of the sinusoidal time features (DiT's TimestepEmbedder)

    def __post_init__(self) -> None:
        if self.input_size % self.patch_size:
            raise ValueError(f"patch_size {self.patch_size} must divide input_size {self.input_size}")
        if self.hidden_size % self.num_heads:
            raise ValueError(f"num_heads {self.num_heads} must divide hidden_size {self.hidden_size}")
        if self.hidden_size % 4:
            raise ValueError(f"hidden_size must be a multiple of 4 (2D sin-cos embeddings), got {self.hidden_size}")

    @property
    def grid_size(self) -> int:
        return self.input_size // self.patch_size  # S/p tokens per side

    @property
    def num_tokens(self) -> int:
        return self.grid_size**2  # N = (S/p)^2: 256 for p = 2 and 64 for p = 4 at S = 32

    @classmethod
    def named(cls, name: str, **overrides) -> DiTConfig:
        """``"S/2"`` -> DiT-S with p = 2 (DiT Table 1: sizes S, B, L, XL; ``tiny`` is the course's smoke size)."""
        size, _, patch = name.partition("/")
        if size not in DIT_SIZES or not patch.isdigit():
            raise ValueError(f"a DiT size is SIZE/PATCH with SIZE in {sorted(DIT_SIZES)}, e.g. 'S/2'; got {name!r}")
        depth, width, heads = DIT_SIZES[size]
        return cls(**{"depth": depth, "hidden_size": width, "num_heads": heads, "patch_size": int(patch), **overrides})

    @classmethod
    def small(cls, patch_size: int = 2, **overrides) -> DiTConfig:
        """DiT-S: 12 layers, width 384, 6 heads (33M parameters at p = 2 on ImageNet)."""
        return cls.named(f"S/{patch_size}", **overrides)

    @classmethod
    def base(cls, patch_size: int = 2, **overrides) -> DiTConfig:
        """DiT-B: 12 layers, width 768, 12 heads (130M parameters)."""
        return cls.named(f"B/{patch_size}", **overrides)

    @classmethod
    def large(cls, patch_size: int = 2, **overrides) -> DiTConfig:
        """DiT-L: 24 layers, width 1024, 16 heads."""
        return cls.named(f"L/{patch_size}", **overrides)

    @classmethod
    def xlarge(cls, patch_size: int = 2, **overrides) -> DiTConfig:
        """DiT-XL: 28 layers, width 1152, 16 heads (675M parameters at p = 2)."""
        return cls.named(f"XL/{patch_size}", **overrides)

    @classmethod
    def tiny(cls, patch_size: int = 4, **overrides) -> DiTConfig:
        """The smoke profile (CPU): 2 layers, width 64, 2 heads."""
        return cls.named(f"tiny/{patch_size}", **overrides)


# ---- pieces: patches, positions, modulation -------------------------------------------------------

def patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """(B, C, S, S) -> (B, N, p*p*C): token n = row-major patch n, flattened as (p rows, p columns, C)."""
    B, C, H, W = x.shape
    x = x.reshape(B, C, H // p, p, W // p, p)
    return torch.einsum("nchpwq->nhwpqc", x).reshape(B, (H // p) * (W // p), p * p * C)


def unpatchify(tokens: torch.Tensor, p: int, channels: int) -> torch.Tensor:
    """(B, N, p*p*C) -> (B, C, S, S), the inverse of ``patchify`` (DiT Sec. 3.2, "Transformer decoder")."""
    B, N, _ = tokens.shape
    h = math.isqrt(N)  # S/p
    x = tokens.reshape(B, h, h, p, p, channels)
    return torch.einsum("nhwpqc->nchpwq", x).reshape(B, channels, h * p, h * p)


def sincos_pos_embed_2d(dim: int, grid_size: int) -> torch.Tensor:
    """Fixed 2D sin-cos position embeddings (DiT Sec. 3.2: ViT's sine-cosine kind, in 2D as MAE), (grid^2, dim)
    float64: the first dim/2 channels encode the column, the last dim/2 the row; each half is
    [sin(pos w_k), cos(pos w_k)] with w_k = 10000^(-k / (dim/4))."""
    omega = 1.0 / 10_000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim / 4))  # (dim/4,)
    pos = torch.arange(grid_size, dtype=torch.float64)
    rows, cols = torch.meshgrid(pos, pos, indexing="ij")  # (grid, grid) each

    def embed(coord: torch.Tensor) -> torch.Tensor:
        angles = coord.reshape(-1, 1) * omega  # (grid^2, dim/4)
        return torch.cat([angles.sin(), angles.cos()], dim=1)  # (grid^2, dim/2)

    return torch.cat([embed(cols), embed(rows)], dim=1)  # (grid^2, dim)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x (B, N, D) * (1 + scale) + shift, with shift and scale (B, D) per sample (DiT Sec. 3.2, adaLN)."""
    return x * (1 + scale[:, None]) + shift[:, None]


def split_heads(qkv: torch.Tensor, num_heads: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, N, 3D) -> q, k, v, each (B, heads, N, D/heads)."""
    B, N, D3 = qkv.shape
    return qkv.reshape(B, N, 3, num_heads, D3 // (3 * num_heads)).permute(2, 0, 3, 1, 4).unbind(0)


def merge_heads(h: torch.Tensor) -> torch.Tensor:
    """(B, heads, N, d) -> (B, N, heads * d)."""
    B, H, N, d = h.shape
    return h.transpose(1, 2).reshape(B, N, H * d)


class Attention(nn.Module):
    """Multi-head self-attention: proj(softmax(q k^T / sqrt(d)) v) with [q, k, v] = qkv(x)."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)  # output rows: q, then k, then v; each head-major
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = split_heads(self.qkv(x), self.num_heads)  # each (B, heads, N, d)
        return self.proj(merge_heads(F.scaled_dot_product_attention(q, k, v)))  # (B, N, D)


class MLP(nn.Sequential):
    """Linear(D, r D), GELU (tanh approximation, as DiT), Linear(r D, D)."""

    def __init__(self, dim: int, mlp_ratio: float):
        hidden = int(dim * mlp_ratio)
        super().__init__(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))


def _layer_norm(dim: int) -> nn.LayerNorm:
    return nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)  # adaLN supplies the affine part


class DiTBlock(nn.Module):
    """x + gate_msa * Attn(modulate(LN(x), shift_msa, scale_msa)), then the same with the MLP (DiT Fig. 3)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1, self.attn = _layer_norm(dim), Attention(dim, num_heads)
        self.norm2, self.mlp = _layer_norm(dim), MLP(dim, mlp_ratio)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))  # c -> 6 (B, D) vectors

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """x (B, N, D), c (B, D) -> (B, N, D)."""
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + gate_msa[:, None] * self.attn(modulate(self.norm1(x), shift_msa, scale_msa))  # DiT Sec. 3.2, adaLN-Zero
        return x + gate_mlp[:, None] * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))


class FinalLayer(nn.Module):
    """modulate(LN(x), shift, scale) then Linear(D, p*p*C): each token's predicted patch (DiT Sec. 3.2)."""

    def __init__(self, dim: int, patch_size: int, out_channels: int):
        super().__init__()
        self.norm = _layer_norm(dim)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
        self.linear = nn.Linear(dim, patch_size * patch_size * out_channels)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(self.norm(x), shift, scale))  # (B, N, p*p*C)


class TimestepEmbedder(nn.Module):
    """t -> MLP(sinusoidal(t)): Linear(f, D), SiLU, Linear(D, D) on f = 256 sinusoidal features (DiT Sec. 3.2)."""

    def __init__(self, dim: int, frequency_dim: int = 256):
        super().__init__()
        self.frequency_dim = frequency_dim
        self.mlp = nn.Sequential(nn.Linear(frequency_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return self.mlp(sinusoidal_embedding(t, self.frequency_dim).to(dtype))  # (B, D)


# ---- the model ----------------------------------------------------------------------------------

def check_inputs(config, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None,
                 dtype: torch.dtype | None = None) -> None:
    """The U-Net's input checks, with the same messages, for a DiTConfig (input_size is the side length;
    ``dtype``: the model's parameter dtype, which x_t must have outside autocast)."""
    check_denoiser_inputs(config, x_t, t, y, config.input_size, dtype)


class DiT(nn.Module):
    """eps_theta(x_t, t, y), called as ``model(x_t, t, y=None)`` like the U-Net; the output has x_t's shape.

    For a class-conditional model (``num_classes`` set), ``y=None`` means the null class for the whole
    batch, and label ``num_classes`` in ``y`` the null class for that sample (classifier-free guidance).
    """

    def __init__(self, config: DiTConfig = DiTConfig()):
        super().__init__()
        self.config = c = config
        D, p = c.hidden_size, c.patch_size
        self.x_embedder = nn.Conv2d(c.in_channels, D, kernel_size=p, stride=p)  # patchify + linear (DiT Sec. 3.2)
        pos = sincos_pos_embed_2d(D, c.grid_size).float()[None]  # (1, N, D), fixed
        self.register_buffer("pos_embed", pos, persistent=False)
        self.t_embedder = TimestepEmbedder(D, c.frequency_dim)
        self.y_embedder = nn.Embedding(c.num_classes + 1, D) if c.num_classes is not None else None
        self.blocks = nn.ModuleList(DiTBlock(D, c.num_heads, c.mlp_ratio) for _ in range(c.depth))
        self.final_layer = FinalLayer(D, p, c.in_channels)
        self.initialize_weights()

    @torch.no_grad()
    def initialize_weights(self) -> None:
        """DiT's initialization (its ``initialize_weights``): Xavier-uniform linears and patch embedding,
        N(0, 0.02) label and time embeddings, and zero for every adaLN modulation and the final linear."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        w = self.x_embedder.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))  # as a Linear(p*p*C, D)
        nn.init.zeros_(self.x_embedder.bias)
        if self.y_embedder is not None:
            nn.init.normal_(self.y_embedder.weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)
        for block in [*self.blocks, self.final_layer]:  # adaLN-Zero (DiT Sec. 3.2): each block starts as the identity
            nn.init.zeros_(block.adaLN_modulation[-1].weight)
            nn.init.zeros_(block.adaLN_modulation[-1].bias)
        nn.init.zeros_(self.final_layer.linear.weight)
        nn.init.zeros_(self.final_layer.linear.bias)

    def condition(self, t: torch.Tensor, y: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor:
        """c = t_emb + y_emb, (B, D) (DiT Sec. 3.2); y None means the null class (or nothing, if unconditional)."""
        c = self.t_embedder(t, dtype)
        if self.y_embedder is not None:
            if y is None:
                y = torch.full(t.shape, self.config.num_classes, dtype=torch.long, device=t.device)
            c = c + self.y_embedder(y)
        return c

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """x_t (B, C, S, S), t (B,) steps (int or float), y (B,) integer labels or None -> (B, C, S, S)."""
        check_inputs(self.config, x_t, t, y, self.x_embedder.weight.dtype)
        x = self.x_embedder(x_t).flatten(2).transpose(1, 2) + self.pos_embed  # (B, N, D)
        c = self.condition(t, y, x_t.dtype)  # (B, D); x_t's dtype, as the U-Net (float32 under autocast)
        for block in self.blocks:
            x = block(x, c)
        x = self.final_layer(x, c)  # (B, N, p*p*C)
        return unpatchify(x, self.config.patch_size, self.config.in_channels)  # (B, C, S, S)
