"""Networks. Denoisers are called as ``model(x_t, t)`` with t a (B,) tensor of steps; the VAE has encode/decode;
the classifier is called as ``model(x)``, or ``model(x_t, t)`` when time-conditioned."""

from .classifier import Classifier, ClassifierConfig
from .embeddings import sinusoidal_embedding
from .mlp import MLPDenoiser, MLPConfig
from .unet import UNet, UNetConfig
from .vae import VAE, VAEConfig

__all__ = ["Classifier", "ClassifierConfig", "sinusoidal_embedding", "MLPDenoiser",
           "MLPConfig", "UNet", "UNetConfig", "VAE", "VAEConfig"]
