"""Networks. Denoisers are called as ``model(x_t, t)`` with t a (B,) tensor of steps; the VAE has encode/decode."""

from .embeddings import sinusoidal_embedding
from .mlp import MLPDenoiser, MLPConfig
from .unet import UNet, UNetConfig
from .vae import VAE, VAEConfig

__all__ = ["sinusoidal_embedding", "MLPDenoiser", "MLPConfig", "UNet", "UNetConfig", "VAE", "VAEConfig"]
