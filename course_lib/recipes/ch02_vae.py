"""Chapter 2's recipe: the VAE on CIFAR-10 per profile, trained or loaded (what chapter 6 reuses).

    vae_recipe(profile)                   the chapter 2 VAE's sizes and schedule
    train_vae(recipe, images, ...)        trains one VAE with the shared training loop
    chapter2_vae(profile, device)         load the saved chapter 2 VAE, or train and save it
    MODELS                                name -> train-or-load function (scripts/train.py)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..course.profiles import Profile
from ..data.cifar import image_batches
from ..models.vae import VAE, VAEConfig
from ..process.elbo import VAELoss
from ..training.loop import TrainConfig, TrainResult, train
from .common import _model_fields, _train_or_load


def vae_recipe(profile: Profile) -> dict[str, Any]:
    """The chapter 2 VAE per profile: model sizes (VAEConfig fields) and training settings."""
    return profile.choose(
        smoke=dict(model=dict(base_channels=16, channel_mult=(1, 2, 2), blocks_per_level=1, latent_channels=4),
                   steps=200, batch=32, lr=1e-3, beta=1.0, ema_decay=0.99, train_images=2_000),
        # laptop: provisional (sized when chapter 2's laptop model is trained, issue 18)
        laptop=dict(model=dict(base_channels=32, channel_mult=(1, 2, 2), blocks_per_level=1, latent_channels=4),
                    steps=20_000, batch=64, lr=1e-3, beta=1.0, ema_decay=0.999, train_images=None),
        colab=dict(model=dict(base_channels=64, channel_mult=(1, 2, 2), blocks_per_level=1, latent_channels=4),
                   steps=15_000, batch=128, lr=5e-4, beta=1.0, ema_decay=0.999, train_images=None),
        full=dict(model=dict(base_channels=128, channel_mult=(1, 2, 2), blocks_per_level=2, latent_channels=4),
                  steps=40_000, batch=256, lr=5e-4, beta=1.0, ema_decay=0.999, train_images=None),
    )


def train_vae(recipe: dict[str, Any], images: torch.Tensor, *, beta: float | None = None, steps: int | None = None,
              model_overrides: dict[str, Any] | None = None, seed: int = 0, progress: bool = True,
              checkpoint_path=None) -> TrainResult:
    """Trains a VAE on uint8 ``images`` (N, 3, 32, 32), on their device, with the recipe's settings
    (``beta``, ``steps`` and model fields may be overridden, e.g. for a sweep). Returns the loop's result;
    ``result.ema`` is the model to use."""
    torch.manual_seed(seed)
    config = VAEConfig(**{**recipe["model"], **(model_overrides or {})})
    vae = VAE(config).to(images.device)
    gen = torch.Generator(images.device).manual_seed(seed)
    cfg = TrainConfig(steps=steps if steps is not None else recipe["steps"], lr=recipe["lr"],
                      ema_decay=recipe["ema_decay"], warmup_steps=min(500, recipe["steps"] // 10),
                      log_every=max(1, (steps or recipe["steps"]) // 25), progress=progress,
                      checkpoint_path=checkpoint_path, checkpoint_every=max(1, (steps or recipe["steps"]) // 20))
    return train(vae, VAELoss(recipe["beta"] if beta is None else beta), image_batches(images, recipe["batch"], generator=gen), cfg)


def _build_vae(config: dict[str, Any]) -> VAE:
    return VAE(VAEConfig(**_model_fields(config)))


def chapter2_vae(profile: Profile, device: torch.device | str = "cpu", retrain: bool = False, *,
                 steps: int | None = None, checkpoint_path: str | Path | None = None) -> tuple[VAE, dict]:
    """The chapter 2 VAE for ``profile``: loaded from its artifact, else trained with ``train_vae`` on
    CIFAR-10's training set and saved (what chapter 6 calls). ``steps`` replaces the recipe's (tests);
    ``checkpoint_path``: resume from it and save to it."""
    return _train_or_load(f"ch02_vae-{profile.name}", _build_vae, profile, device, retrain, vae_recipe, train_vae,
                          steps, checkpoint_path, model_config_fn=lambda r: VAEConfig(**r["model"]))


# Train-or-load functions by artifact base name (artifact NAME-PROFILE), for scripts/train.py.
MODELS = {"ch02_vae": chapter2_vae}
