"""Networks. Denoisers are called as ``model(x_t, t)`` with t a (B,) tensor of steps; the VAE has encode/decode;
the classifier is called as ``model(x)``, or ``model(x_t, t)`` when time-conditioned; the text-conditioned
latent denoiser as ``model(z_t, t, tokens)``; chapter 9's guidance-conditioned student as
``model(z_t, t, tokens, w)``."""

from .classifier import Classifier, ClassifierConfig
from .embeddings import sinusoidal_embedding
from .lcm import GuidanceConditionedDenoiser, guidance_embedding
from .ldm import LatentDenoiser, LatentDenoiserConfig
from .mlp import MLPDenoiser, MLPConfig
from .text import TextEncoder, TextEncoderConfig, empty_tokens
from .unet import UNet, UNetConfig
from .vae import VAE, VAEConfig

__all__ = ["Classifier", "ClassifierConfig", "sinusoidal_embedding", "GuidanceConditionedDenoiser",
           "guidance_embedding", "LatentDenoiser", "LatentDenoiserConfig",
           "MLPDenoiser", "MLPConfig", "TextEncoder", "TextEncoderConfig", "empty_tokens", "UNet", "UNetConfig",
           "VAE", "VAEConfig"]
