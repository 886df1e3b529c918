"""Denoising networks. Every model is called as ``model(x_t, t)`` with t a (B,) tensor of steps."""

from .embeddings import sinusoidal_embedding
from .mlp import MLPDenoiser, MLPConfig

__all__ = ["sinusoidal_embedding", "MLPDenoiser", "MLPConfig"]
