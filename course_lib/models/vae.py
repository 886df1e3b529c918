"""A convolutional VAE for 32x32 images: the autoencoder that latent diffusion (chapter 6) reuses.

    x      (B, 3, 32, 32) image in [-1, 1]
    z      (B, latent_channels, 32 / 2^d, 32 / 2^d) latent, d = len(channel_mult) - 1 downsamplings
    mu, logvar   the encoder's diagonal Gaussian q(z | x), same shape as z
    x_mean, log_s   the decoder's Gaussian p(x | z) = N(x_mean(z), diag s(z)^2): a mean and a noise
                    level for every pixel and colour, both (B, 3, 32, 32)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class VAEConfig:
    image_channels: int = 3
    base_channels: int = 64
    channel_mult: tuple[int, ...] = (1, 2, 2)  # 32 -> 16 -> 8: a 4x8x8 latent for CIFAR-10
    blocks_per_level: int = 1
    latent_channels: int = 4
    groups: int = 8  # GroupNorm groups

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.channel_mult) - 1)

    def latent_shape(self, image_size: int = 32) -> tuple[int, int, int]:
        side = image_size // self.downsample_factor
        return (self.latent_channels, side, side)


class ResBlock(nn.Module):
    """x + conv(SiLU(GN(conv(SiLU(GN(x)))))), with a 1x1 skip when the width changes."""

    def __init__(self, c_in: int, c_out: int, groups: int):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(groups, c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm2, self.conv2 = nn.GroupNorm(groups, c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class Encoder(nn.Module):
    def __init__(self, c: VAEConfig):
        super().__init__()
        widths = [c.base_channels * m for m in c.channel_mult]
        layers: list[nn.Module] = [nn.Conv2d(c.image_channels, widths[0], 3, padding=1)]
        for level, width in enumerate(widths):
            prev = widths[max(level - 1, 0)]
            if level > 0:
                layers.append(nn.Conv2d(prev, prev, 3, stride=2, padding=1))  # halve the resolution
            for b in range(c.blocks_per_level):
                layers.append(ResBlock(prev if b == 0 else width, width, c.groups))
        layers += [nn.GroupNorm(c.groups, widths[-1]), nn.SiLU(), nn.Conv2d(widths[-1], 2 * c.latent_channels, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.net(x).chunk(2, dim=1)  # each (B, latent_channels, h, w)
        return mu, logvar


class Decoder(nn.Module):
    def __init__(self, c: VAEConfig):
        super().__init__()
        widths = [c.base_channels * m for m in reversed(c.channel_mult)]
        layers: list[nn.Module] = [nn.Conv2d(c.latent_channels, widths[0], 3, padding=1)]
        for level, width in enumerate(widths):
            prev = widths[max(level - 1, 0)]
            if level > 0:
                layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(prev, prev, 3, padding=1)]
            for b in range(c.blocks_per_level):
                layers.append(ResBlock(prev if b == 0 else width, width, c.groups))
        out = nn.Conv2d(widths[-1], 2 * c.image_channels, 3, padding=1)  # the mean and log s of every pixel
        with torch.no_grad():  # log s starts at -2 everywhere (s ~ 0.14) and learns where the decoder is unsure
            out.weight[c.image_channels:].zero_()
            out.bias[c.image_channels:].fill_(-2.0)
        layers += [nn.GroupNorm(c.groups, widths[-1]), nn.SiLU(), out]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x_mean, log_s = self.net(z).chunk(2, dim=1)  # each (B, 3, 32, 32)
        return x_mean, log_s


class VAE(nn.Module):
    """``encode(x) -> (mu, logvar)``; ``decode(z) -> x_mean``; ``decode_distribution(z) -> (x_mean, log_s)``."""

    def __init__(self, config: VAEConfig = VAEConfig()):
        super().__init__()
        self.config = config
        self.encoder, self.decoder = Encoder(config), Decoder(config)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.ndim != 4 or x.shape[1] != self.config.image_channels:
            raise ValueError(f"expected images (B, {self.config.image_channels}, H, W), got {tuple(x.shape)}")
        f, (H, W) = self.config.downsample_factor, x.shape[2:]
        if H % f or W % f:  # otherwise the stride-2 convs round up and decode(encode(x)) has another size
            raise ValueError(f"the VAE needs H and W divisible by its downsampling factor {f} "
                             f"(2^(len(channel_mult) - 1), channel_mult={self.config.channel_mult}), got {H} x {W}; "
                             f"crop or pad the images to a multiple of {f} (e.g. {H - H % f or f} x {W - W % f or f})")
        return self.encoder(x)

    def decode_distribution(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """p(x | z)'s mean and log noise level per pixel, each (B, C, H, W)."""
        if z.ndim != 4 or z.shape[1] != self.config.latent_channels:
            raise ValueError(f"expected latents (B, {self.config.latent_channels}, h, w), got {tuple(z.shape)}")
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The mean of p(x | z): the image a latent stands for (B, C, H, W)."""
        return self.decode_distribution(z)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction through the posterior mean (no sampling): decode(mu(x))."""
        return self.decode(self.encode(x)[0])
