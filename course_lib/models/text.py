"""A small text encoder for chapter 6: token and learned position embeddings, then pre-norm
transformer layers (Vaswani et al. 2017) whose attention skips padding; trained from scratch
jointly with the latent denoiser, as LDM trains its transformer tau_theta (Rombach et al. 2022,
Sec. 3.3 and App. E.2: a transformer on tokenized captions, learned end to end with the U-Net).

Names -> symbols:
    tokens   y               (B, L) long token ids; position 0 is BOS, padding is ``pad_id``
    context  tau_theta(y)    (B, L, width) token features the U-Net cross-attends to (LDM Eq. 3)
    mask                     (B, L) bool, True for the tokens to attend to: not padding, and BOS always
    L                        sequence length, at most ``max_len``

The empty caption, [BOS, pad, ..., pad], is the null condition of classifier-free guidance:
``empty_tokens(config, B, L)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class TextEncoderConfig:
    """Sizes of the text encoder. Named sizes: ``tiny`` (smoke), ``small`` (colab), ``base`` (full)."""

    vocab_size: int
    max_len: int = 8  # BOS + the longest synthetic caption ("a dark photo of an orange automobile")
    width: int = 256  # the context's feature size D (the U-Net's context_dim)
    num_layers: int = 4
    num_heads: int = 4
    mlp_ratio: int = 4
    dropout: float = 0.0
    pad_id: int = 0
    bos_id: int = 1

    def __post_init__(self) -> None:
        if self.width % self.num_heads:
            raise ValueError(f"num_heads {self.num_heads} must divide width {self.width}")
        if not (0 <= min(self.pad_id, self.bos_id) and max(self.pad_id, self.bos_id) < self.vocab_size):
            raise ValueError(f"pad_id and bos_id must be token ids in [0, {self.vocab_size - 1}]")
        if self.pad_id == self.bos_id or self.max_len < 1:
            raise ValueError("pad_id and bos_id must differ, and max_len must be >= 1")

    @classmethod
    def tiny(cls, vocab_size: int, **overrides) -> TextEncoderConfig:
        return cls(vocab_size, **{**dict(width=32, num_layers=1, num_heads=2), **overrides})

    @classmethod
    def small(cls, vocab_size: int, **overrides) -> TextEncoderConfig:
        return cls(vocab_size, **{**dict(width=128, num_layers=3, num_heads=4), **overrides})

    @classmethod
    def base(cls, vocab_size: int, **overrides) -> TextEncoderConfig:
        return cls(vocab_size, **overrides)


def empty_tokens(config: TextEncoderConfig, batch: int, length: int | None = None,
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """The empty caption's tokens, [BOS, pad, ..., pad], for each of ``batch`` rows: (batch, length) long."""
    tokens = torch.full((batch, length or config.max_len), config.pad_id, dtype=torch.long, device=device)
    tokens[:, 0] = config.bos_id
    return tokens


class TransformerLayer(nn.Module):
    """x + proj(attention(LN(x))), then x + MLP(LN(x)): a pre-norm transformer layer. The parameters
    are laid out as torch.nn.TransformerEncoderLayer's (norm_first=True, GELU), which the tests compare with."""

    def __init__(self, width: int, num_heads: int, mlp_ratio: int, dropout: float):
        super().__init__()
        self.num_heads, self.dropout = num_heads, dropout
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)  # rows: q, then k, then v; each head-major
        self.proj = nn.Linear(width, width)
        self.mlp = nn.Sequential(nn.Linear(width, mlp_ratio * width), nn.GELU(), nn.Linear(mlp_ratio * width, width))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        B, L, D = x.shape
        qkv = self.qkv(self.norm1(x)).reshape(B, L, 3, self.num_heads, D // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, L, d)
        h = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :],  # padding gets no weight
                                           dropout_p=self.dropout if self.training else 0.0)
        x = x + F.dropout(self.proj(h.transpose(1, 2).reshape(B, L, D)), self.dropout, self.training)
        return x + F.dropout(self.mlp(self.norm2(x)), self.dropout, self.training)


class TextEncoder(nn.Module):
    """tau_theta(y): ``encoder(tokens) -> (context (B, L, width), mask (B, L) bool)``."""

    def __init__(self, config: TextEncoderConfig):
        super().__init__()
        c = self.config = config
        self.token_emb = nn.Embedding(c.vocab_size, c.width)
        self.pos_emb = nn.Parameter(0.02 * torch.randn(c.max_len, c.width))  # learned positions (GPT-2 init)
        self.layers = nn.ModuleList(TransformerLayer(c.width, c.num_heads, c.mlp_ratio, c.dropout)
                                    for _ in range(c.num_layers))
        self.norm = nn.LayerNorm(c.width)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        if tokens.ndim != 2 or tokens.dtype != torch.long or not 1 <= tokens.shape[1] <= c.max_len:
            raise ValueError(f"tokens must be a long tensor (B, L) with 1 <= L <= {c.max_len}, got {tokens.dtype} "
                             f"{tuple(tokens.shape)}")
        mask = tokens != c.pad_id  # (B, L): padding is never attended to ...
        mask[:, 0] = True  # ... and BOS always is, so no row of attention weights is empty
        x = self.token_emb(tokens) + self.pos_emb[: tokens.shape[1]]  # (B, L, width)
        for layer in self.layers:
            x = layer(x, mask)
        return self.norm(x), mask
