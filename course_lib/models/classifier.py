"""A small, fast ResNet for CIFAR-10: ResNet-9 as in Page's "How to train your ResNet" (DAWNBench) and
Keller Jordan's airbench, conv-BN-ReLU blocks with two residual stages.

Two uses in chapter 5: the evaluation classifier (clean images; how often a sample generated for
class y is classified as y), and, time-conditioned, the noise-aware classifier p_phi(y | x_t, t)
that classifier guidance differentiates (Dhariwal & Nichol 2021).

Time convention: integer steps t in {0, ..., T-1}, t = 0 nearest the data (see process/schedules.py).

Names -> symbols:
    x       x or x_t   images in [-1, 1] (``data.to_float``), (B, in_channels, image_size, image_size)
    t       t          (B,) steps, only for a time-conditioned classifier
    emb                (B, time_embed_dim) MLP(sinusoidal(t)); each block turns it into a per-channel
                       scale and bias applied after batch norm: h = BN(h) * (1 + scale) + bias
    logits             (B, num_classes), log p(y | x) up to a constant

Architecture: a prep conv (widths[0]); three stages, each conv -> 2x2 max pool -> BN -> ReLU
(widths[1], widths[2], widths[3]; 32 -> 16 -> 8 -> 4 px), the first and the last followed by a
residual branch of two conv-BN-ReLU blocks; a global max pool; a linear layer whose logits are
scaled by 1/8 (Page's trick: softmax starts nearly uniform).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .embeddings import sinusoidal_embedding


@dataclass(frozen=True)
class ClassifierConfig:
    """Defaults: Page's ResNet-9 (6.6M parameters). Named sizes: ``tiny`` (CI), ``small`` (a CPU) and ``standard``."""

    in_channels: int = 3
    image_size: int = 32  # divisible by 8 (three 2x2 pools)
    widths: tuple[int, int, int, int] = (64, 128, 256, 512)  # prep, stage 1, stage 2, stage 3
    num_classes: int = 10
    time_conditioned: bool = False  # True: forward(x_t, t) for classifier guidance
    time_embed_dim: int = 128  # width of the sinusoidal features and of the embedding MLP
    logit_scale: float = 0.125

    def __post_init__(self) -> None:
        if self.image_size % 8:
            raise ValueError(f"image_size must be divisible by 8 (three 2x2 max pools), got {self.image_size}")
        if len(self.widths) != 4 or min(self.widths) < 1:
            raise ValueError(f"widths must be four positive channel counts (prep, 3 stages), got {self.widths}")
        if self.time_embed_dim % 2:
            raise ValueError(f"time_embed_dim must be even (sinusoidal features), got {self.time_embed_dim}")

    @classmethod
    def tiny(cls, **overrides) -> ClassifierConfig:
        """The ``smoke`` profile (CPU): 0.4M parameters."""
        return cls(**{"widths": (16, 32, 64, 128), "time_embed_dim": 32, **overrides})

    @classmethod
    def small(cls, **overrides) -> ClassifierConfig:
        """The ``laptop`` profile (a 2-core CPU): ResNet-9 at half width, 1.6M parameters and a quarter of the
        standard one's flops (0.19 against 0.76 GFLOP per 32 x 32 image)."""
        return cls(**{"widths": (32, 64, 128, 256), "time_embed_dim": 64, **overrides})

    @classmethod
    def standard(cls, **overrides) -> ClassifierConfig:
        """The ``colab`` and ``full`` profiles: ResNet-9, 6.6M parameters. The aim (not yet measured
        here): about 90% or more CIFAR-10 test accuracy after a few minutes' training on one GPU."""
        return cls(**overrides)


class ConvBlock(nn.Module):
    """conv 3x3 -> (2x2 max pool) -> BN -> (time scale and bias) -> ReLU."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int | None = None, pool: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2) if pool else nn.Identity()
        self.norm = nn.BatchNorm2d(c_out)
        self.emb_proj = nn.Linear(emb_dim, 2 * c_out) if emb_dim else None

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        h = self.norm(self.pool(self.conv(x)))  # (B, c_out, H', W')
        if self.emb_proj is not None:
            scale, bias = self.emb_proj(emb)[:, :, None, None].chunk(2, dim=1)  # each (B, c_out, 1, 1)
            h = h * (1 + scale) + bias  # per-channel scale and bias from t
        return F.relu(h)


class Residual(nn.Module):
    """x + block2(block1(x)), both conv-BN-ReLU at x's width."""

    def __init__(self, channels: int, emb_dim: int | None):
        super().__init__()
        self.block1, self.block2 = ConvBlock(channels, channels, emb_dim), ConvBlock(channels, channels, emb_dim)

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        return x + self.block2(self.block1(x, emb), emb)


class Classifier(nn.Module):
    """Logits (B, num_classes) of images in [-1, 1]; called as ``model(x)``, or ``model(x_t, t)`` when
    ``config.time_conditioned``."""

    def __init__(self, config: ClassifierConfig = ClassifierConfig()):
        super().__init__()
        self.config = c = config
        d = c.time_embed_dim if c.time_conditioned else None
        self.time_mlp = nn.Sequential(nn.Linear(c.time_embed_dim, d), nn.SiLU(), nn.Linear(d, d), nn.SiLU()) \
            if d else None
        w0, w1, w2, w3 = c.widths
        self.blocks = nn.ModuleList([
            ConvBlock(c.in_channels, w0, d),  # prep, full resolution
            ConvBlock(w0, w1, d, pool=True), Residual(w1, d),  # stage 1, S/2
            ConvBlock(w1, w2, d, pool=True),  # stage 2, S/4
            ConvBlock(w2, w3, d, pool=True), Residual(w3, d),  # stage 3, S/8
        ])
        self.head = nn.Linear(w3, c.num_classes, bias=False)

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, C, S, S) in [-1, 1], t (B,) steps (time-conditioned classifiers only) -> logits (B, K)."""
        self._check_inputs(x, t)
        emb = None
        if self.time_mlp is not None:
            emb = self.time_mlp(sinusoidal_embedding(t, self.config.time_embed_dim).to(x.dtype))  # (B, d)
        h = x
        for block in self.blocks:
            h = block(h, emb)
        h = F.adaptive_max_pool2d(h, 1).flatten(1)  # (B, widths[3])
        return self.head(h) * self.config.logit_scale  # (B, num_classes)

    def _check_inputs(self, x: torch.Tensor, t: torch.Tensor | None) -> None:
        c = self.config
        expected = (c.in_channels, c.image_size, c.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"x must have shape (B, {', '.join(map(str, expected))}), got {tuple(x.shape)}")
        if c.time_conditioned and t is None:
            raise ValueError("this classifier is time-conditioned: call it as model(x_t, t) with t (B,) steps "
                             "(t = 0 for nearly clean images)")
        if not c.time_conditioned and t is not None:
            raise ValueError("this classifier is not time-conditioned (ClassifierConfig.time_conditioned=False): "
                             "call it as model(x) on clean images")
        if t is not None and (not isinstance(t, torch.Tensor) or t.shape != (x.shape[0],)):
            got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"t must be a tensor of shape ({x.shape[0]},), got {got}")
