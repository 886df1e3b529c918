"""The U-Net denoiser of DDPM (Ho et al. 2020, App. B; the PixelCNN++-style Wide ResNet backbone).

Time convention: integer steps t in {0, ..., T-1}, t = 0 nearest the data (see process/schedules.py).
Float t is accepted too (it goes through the same sinusoidal features); continuous-time chapters
pass times in step units.

Names -> symbols:
    x_t   x_t     the noised input, (B, in_channels, image_size, image_size); also 4-channel latents
    t     t       (B,) steps
    y     y       (B,) class labels in {0, ..., num_classes - 1}; the index num_classes is the
                  learned null class that classifier-free guidance uses for eps(x_t, t, null)
    emb           (B, time_embed_dim) time embedding MLP(sinusoidal(t)), plus a label embedding
    context c     (B, L, context_dim) token features of a text encoder, tau_theta(y) in LDM Eq. 3
    context_mask  (B, L) bool, True for the tokens to attend to (False: padding)

Architecture (DDPM's CIFAR-10 model with the defaults): a 3x3 input conv; per resolution level
``num_res_blocks`` residual blocks (self-attention after each at ``attention_resolutions``) and a
stride-2 conv down; a middle of res block, attention, res block; the mirror image going up with
``num_res_blocks + 1`` blocks per level, each concatenating one skip from the way down, and
nearest-neighbour upsampling followed by a 3x3 conv; GroupNorm, SiLU, a 3x3 output conv.
Time conditioning is additive, as in DDPM: h += Linear(SiLU(emb)) between the two convs of each
residual block (not Improved DDPM's scale-shift). As in DDPM, the last conv of every residual
branch, the attention output projection and the output conv start at zero, so at initialization
every block is the identity and the network outputs 0.

Text conditioning (LDM, Rombach et al. 2022, Sec. 3.3): with ``context_dim`` set, every block with
self-attention (the middle one included) follows it with cross-attention, queries from the feature
map and keys and values from the context (LDM Eq. 3), its output projection zero-initialized too.
Without ``context_dim`` the network, its parameters and their names are exactly the class-conditional
or unconditional U-Net of chapters 3-5.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .embeddings import sinusoidal_embedding
from .unet_blocks import Block, Downsample, ResBlock, Upsample, _norm, _zero


@dataclass(frozen=True)
class UNetConfig:
    """Defaults: DDPM's CIFAR-10 model (35.7M parameters). Named sizes: ``tiny``, ``small``, ``ddpm_cifar10``."""

    in_channels: int = 3
    out_channels: int | None = None  # None: same as in_channels (the prediction has x_t's shape)
    image_size: int = 32
    base_channels: int = 128  # also the width of the sinusoidal time features
    channel_mult: tuple[int, ...] = (1, 2, 2, 2)  # widths 128, 256, 256, 256 at 32, 16, 8, 4 px
    num_res_blocks: int = 2  # per level on the way down (one more on the way up)
    attention_resolutions: tuple[int, ...] = (16,)  # side lengths (px) that get self-attention
    head_dim: int | None = None  # None: one head as wide as the layer (DDPM)
    dropout: float = 0.1
    norm_groups: int = 32  # GroupNorm groups; a layer uses gcd(norm_groups, its width)
    num_classes: int | None = None  # None: unconditional; int: label embedding + null class
    time_embed_dim: int | None = None  # None: 4 * base_channels (DDPM)
    context_dim: int | None = None  # None: no cross-attention; int: width of the text context (LDM Sec. 3.3)

    def __post_init__(self) -> None:
        levels = len(self.channel_mult)
        if levels == 0 or self.image_size % 2 ** (levels - 1):
            raise ValueError(f"image_size {self.image_size} must be divisible by 2^(len(channel_mult) - 1) "
                             f"= {2 ** max(levels - 1, 0)} (channel_mult={self.channel_mult})")
        if not set(self.attention_resolutions) <= set(self.resolutions):
            raise ValueError(f"attention_resolutions {self.attention_resolutions} must be among the level "
                             f"resolutions {self.resolutions}")
        if self.context_dim is not None and (isinstance(self.context_dim, bool) or not isinstance(self.context_dim, int)
                                             or self.context_dim < 1):
            raise ValueError(f"context_dim must be None or a positive int, got {self.context_dim!r}")
        if self.base_channels % 2:
            raise ValueError(f"base_channels must be even (sinusoidal features), got {self.base_channels}")
        if self.head_dim is not None:  # every attention layer, the middle one included
            widths = [self.base_channels * m for m, r in zip(self.channel_mult, self.resolutions)
                      if r in self.attention_resolutions] + [self.base_channels * self.channel_mult[-1]]
            if any(w % self.head_dim for w in widths):
                raise ValueError(f"head_dim {self.head_dim} must divide the attention widths {widths}")

    @property
    def resolutions(self) -> tuple[int, ...]:
        """Side length at each level: (32, 16, 8, 4) for DDPM's CIFAR-10 model."""
        return tuple(self.image_size // 2**i for i in range(len(self.channel_mult)))

    @property
    def emb_dim(self) -> int:
        return self.time_embed_dim or 4 * self.base_channels

    def num_heads(self, channels: int) -> int:
        return 1 if self.head_dim is None else channels // self.head_dim

    @classmethod
    def tiny(cls, **overrides) -> UNetConfig:
        """The ``smoke`` profile (CPU): 0.28M parameters, ~0.2 s per training step at batch 32 on 2 cores."""
        sizes = dict(base_channels=16, channel_mult=(1, 2, 2), num_res_blocks=1, attention_resolutions=(8,),
                     dropout=0.0, norm_groups=8)
        return cls(**{**sizes, **overrides})

    @classmethod
    def laptop(cls, **overrides) -> UNetConfig:
        """The ``laptop`` profile (2 CPU cores): 1.1M parameters, about 63 images/s training (fp32,
        batch 64), chosen from the throughput of four candidates (book: benchmarks/README.md)."""
        sizes = dict(base_channels=32, channel_mult=(1, 2, 2), num_res_blocks=1, attention_resolutions=(8,),
                     dropout=0.0, norm_groups=8)
        return cls(**{**sizes, **overrides})

    @classmethod
    def small(cls, **overrides) -> UNetConfig:
        """The ``colab`` profile (one T4): a quarter of DDPM's width and compute."""
        sizes = dict(base_channels=64, channel_mult=(1, 2, 2), num_res_blocks=2, attention_resolutions=(16,),
                     dropout=0.1, norm_groups=32)
        return cls(**{**sizes, **overrides})

    @classmethod
    def ddpm_cifar10(cls, **overrides) -> UNetConfig:
        """The ``full`` profile: DDPM's CIFAR-10 model, 35.7M parameters (DDPM Tab. 1, App. B)."""
        return cls(**overrides)


def check_float_input(name: str, x: torch.Tensor, dtype: torch.dtype | None) -> None:
    """A clear error unless ``x`` is a float tensor of the model's parameter ``dtype`` (None: any float). Under
    ``torch.autocast`` every layer casts its input itself, so only the float check applies there."""
    if not x.is_floating_point():
        fix = ("convert uint8 images with course_lib.data.to_float (0..255 -> [-1, 1])" if x.dtype == torch.uint8
               else "convert it to floats, e.g. course_lib.data.to_float for uint8 images")
        raise TypeError(f"{name} must be a float tensor (the model's dtype, {dtype or torch.float32}), "
                        f"got {x.dtype}; {fix}")
    if dtype is not None and x.dtype != dtype and not torch.is_autocast_enabled(x.device.type):
        raise TypeError(f"{name} is {x.dtype} but the model's parameters are {dtype}: cast the input with "
                        f"{name}.to({dtype}) (or the model with model.to({x.dtype})); for mixed precision keep "
                        f"{name} in {dtype} and run the model under torch.autocast")


def check_denoiser_inputs(config, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None, image_size: int,
                          dtype: torch.dtype | None = None) -> None:
    """A clear error unless x_t is (B, config.in_channels, image_size, image_size) floats of the model's
    parameter ``dtype`` (``check_float_input``), t a (B,) tensor and y None or (B,) integer labels in
    [0, num_classes] of a class-conditional config (``num_classes`` set; label num_classes = null class).
    Shared by the denoisers with ``model(x_t, t, y)``: the U-Net and DiT (and MMDiT, for x_t and t)."""
    c = config
    expected = (c.in_channels, image_size, image_size)
    if x_t.ndim != 4 or tuple(x_t.shape[1:]) != expected:
        raise ValueError(f"x_t must have shape (B, {', '.join(map(str, expected))}), got {tuple(x_t.shape)}")
    check_float_input("x_t", x_t, dtype)
    B = x_t.shape[0]
    if not isinstance(t, torch.Tensor) or t.shape != (B,):
        got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
        raise ValueError(f"t must be a tensor of shape ({B},), got {got}")
    if y is None:
        return
    if getattr(c, "num_classes", None) is None:
        raise ValueError(f"y was given to an unconditional model ({type(c).__name__}.num_classes is None)")
    expected = f"y must be an integer tensor of shape ({B},) with labels in [0, {c.num_classes}] ({c.num_classes} = null class)"
    if y.shape != (B,) or y.dtype.is_floating_point or y.dtype == torch.bool:
        raise ValueError(f"{expected}, got {y.dtype} {tuple(y.shape)}")
    bad = (y < 0) | (y > c.num_classes)
    if bad.any():  # else nn.Embedding's bare IndexError (or a device-side assert on a GPU)
        raise ValueError(f"{expected}, got {y[bad].unique().tolist()[:10]}; labels come from the dataset's "
                         f"0..{c.num_classes - 1}, or are {c.num_classes} to drop the label (classifier-free guidance)")


class UNet(nn.Module):
    """eps_theta(x_t, t, y), called as ``model(x_t, t, y=None)``; the output has x_t's shape (with
    ``out_channels`` channels if that is set). A model with ``context_dim`` is called as
    ``model(x_t, t, context=c, context_mask=m)`` with c (B, L, context_dim) and m (B, L) bool.

    For a class-conditional model (``num_classes`` set), ``y=None`` means the null class for the
    whole batch, and label ``num_classes`` in ``y`` means the null class for that sample (how
    classifier-free guidance drops labels). Giving ``y`` to an unconditional model is an error.
    """

    def __init__(self, config: UNetConfig = UNetConfig()):
        super().__init__()
        self.config = c = config
        ch, emb = c.base_channels, c.emb_dim
        self.time_mlp = nn.Sequential(nn.Linear(ch, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.label_emb = nn.Embedding(c.num_classes + 1, emb) if c.num_classes is not None else None
        self.conv_in = nn.Conv2d(c.in_channels, ch, 3, padding=1)

        widths = [ch * m for m in c.channel_mult]
        skips, width = [ch], ch  # channels of each skip connection, in the order they are made
        self.down = nn.ModuleList()
        for level, (w, res) in enumerate(zip(widths, c.resolutions)):
            for _ in range(c.num_res_blocks):
                self.down.append(Block(width, w, c, attention=res in c.attention_resolutions))
                width = w
                skips.append(width)
            if level < len(widths) - 1:
                self.down.append(Downsample(width))
                skips.append(width)
        self.mid = Block(width, width, c, attention=True)
        self.mid2 = ResBlock(width, width, emb, c.dropout, c.norm_groups)
        self.up = nn.ModuleList()
        for level in reversed(range(len(widths))):
            for _ in range(c.num_res_blocks + 1):
                attention = c.resolutions[level] in c.attention_resolutions
                self.up.append(Block(width + skips.pop(), widths[level], c, attention))
                width = widths[level]
            if level > 0:
                self.up.append(Upsample(width))
        self.out = nn.Sequential(_norm(width, c.norm_groups), nn.SiLU(),
                                 _zero(nn.Conv2d(width, c.out_channels or c.in_channels, 3, padding=1)))

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None,
                context: torch.Tensor | None = None, context_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x_t (B, C, S, S), t (B,) steps (int or float), y (B,) integer labels or None, context (B, L, D)
        and context_mask (B, L) bool (True = a token to attend to) or None -> (B, C_out, S, S)."""
        self._check_inputs(x_t, t, y)
        self._check_context(x_t, context, context_mask)
        cond = (context, context_mask)
        emb = self.time_mlp(sinusoidal_embedding(t, self.config.base_channels).to(x_t.dtype))  # (B, emb_dim)
        if self.label_emb is not None:
            if y is None:
                y = torch.full((x_t.shape[0],), self.config.num_classes, dtype=torch.long, device=x_t.device)
            emb = emb + self.label_emb(y)  # class conditioning: added to the time embedding
        hs = [self.conv_in(x_t)]  # (B, base_channels, S, S); every output on the way down is a skip
        for layer in self.down:
            hs.append(layer(hs[-1], emb, *cond) if isinstance(layer, Block) else layer(hs[-1], emb))
        h = self.mid2(self.mid(hs[-1], emb, *cond), emb)
        for layer in self.up:
            h = layer(h, emb) if isinstance(layer, Upsample) else layer(torch.cat([h, hs.pop()], dim=1), emb, *cond)
        return self.out(h)

    def _check_inputs(self, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None) -> None:
        check_denoiser_inputs(self.config, x_t, t, y, self.config.image_size, self.conv_in.weight.dtype)

    def _check_context(self, x_t: torch.Tensor, context: torch.Tensor | None, mask: torch.Tensor | None) -> None:
        D = self.config.context_dim
        if D is None:
            if context is not None or mask is not None:
                raise ValueError("context was given to a model without cross-attention "
                                 "(UNetConfig.context_dim is None)")
            return
        B = x_t.shape[0]
        if context is None:
            raise ValueError(f"this model cross-attends to a context (context_dim={D}): pass context (B, L, {D}); "
                             "for the unconditional prediction, the context of the empty caption")
        if context.ndim != 3 or context.shape[0] != B or context.shape[2] != D or not context.is_floating_point():
            raise ValueError(f"context must be a float tensor of shape ({B}, L, {D}), got {context.dtype} "
                             f"{tuple(context.shape)}")
        check_float_input("context", context, self.conv_in.weight.dtype)
        if mask is not None and (mask.dtype != torch.bool or mask.shape != context.shape[:2]):
            raise ValueError(f"context_mask must be a bool tensor of shape {tuple(context.shape[:2])} (True = attend), "
                             f"got {mask.dtype} {tuple(mask.shape)}")
