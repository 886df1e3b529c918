"""Chapter 2's recipes: the VAE on CIFAR-10 per profile, trained or loaded (chapters 6, 7 and 9 work in its
latent space), and the VAEs of its rate-distortion sweep.

    vae_recipe(profile)                   the chapter 2 VAE's sizes and schedule
    train_vae(recipe, images, ...)        trains one VAE with the shared training loop
    chapter2_vae(profile, device)         load the saved chapter 2 VAE (the ELBO, beta = 1), or train and save it
    sweep_recipe(profile, name)           a VAE of the rate-distortion sweep (SWEEP: beta, latent shape)
    sweep_vae(profile, name, device)      load that sweep VAE, or train and save it
    same_model(name, profile)             the model a name is in a profile (the laptop sweep's beta = 1 is ch02_vae)
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
        # laptop: 458k parameters at about 0.8 s/step (batch 64, 2 threads of the 2-core CPU, idle): 2,000
        # steps (2.6 epochs, 27 minutes), the sweep's schedule (sweep_recipe), so that the sweep's beta = 1
        # point is this VAE. 20,000 steps (4.4 CPU-hours) were planned; 2,000 already reconstruct at 26.7 dB
        # (chapter 6's aim: 25), and the hours go to the diffusion models (results/models/README.md)
        laptop=dict(model=dict(base_channels=32, channel_mult=(1, 2, 2), blocks_per_level=1, latent_channels=4),
                    steps=2_000, batch=64, lr=1e-3, beta=1.0, ema_decay=1 - 8 / 2_000, train_images=None),
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
                 steps: int | None = None, checkpoint_path: str | Path | None = None,
                 stand_in: bool = True) -> tuple[VAE, dict]:
    """The chapter 2 VAE for ``profile``: loaded from its artifact, else trained with ``train_vae`` on
    CIFAR-10's training set and saved (what chapter 6 calls). ``steps`` replaces the recipe's (tests);
    ``checkpoint_path``: resume from it and save to it. ``stand_in=False`` (chapter 2 itself): train this
    profile's VAE rather than load another profile's published one."""
    return _train_or_load(f"ch02_vae-{profile.name}", _build_vae, profile, device, retrain, vae_recipe, train_vae,
                          steps, checkpoint_path, model_config_fn=_vae_config, stand_in=stand_in)


# Chapter 6's autoencoder is this VAE itself. Latent diffusion wants sharp reconstructions more than a latent
# close to the prior (LDM's KL weight is tiny), so a second model at a small KL weight was planned; the sweep
# measured it unneeded at this size (2026-12-07, laptop recipe, 2,000 steps, 1,000 test images, per-pixel
# decoder): beta = 0.1 reconstructs at 26.84 dB through the posterior mean, beta = 1 at 26.69 dB, both above
# chapter 6's aim of 25 dB, for 1.6 CPU-hours less training.


# the rate-distortion sweep's VAEs, by artifact base name: (beta, changes to the recipe's VAE)
SWEEP = {"ch02_sweep_beta0.1": (0.1, {}), "ch02_sweep_beta1": (1.0, {}), "ch02_sweep_beta10": (10.0, {}),
         "ch02_sweep_beta1_16x16": (1.0, {"channel_mult": (1, 2)})}


def sweep_recipe(profile: Profile, name: str) -> dict[str, Any]:
    """A VAE of chapter 2's sweep (``SWEEP[name]``): the profile's recipe with another beta or latent shape,
    all trained for the same number of steps (fewer than the VAE's, except in the laptop profile, where the
    VAE itself is trained this way). Its EMA decay is 1 - 8 / steps, so that the EMA keeps e^-8 (0.03%) of
    the random initialisation at the end."""
    if name not in SWEEP:
        raise ValueError(f"no sweep VAE named {name!r}; the sweep has {sorted(SWEEP)}")
    beta, changes = SWEEP[name]
    recipe = vae_recipe(profile)
    steps = profile.choose(smoke=50, laptop=2_000, colab=3_000, full=8_000)
    return {**recipe, "model": {**recipe["model"], **changes}, "beta": beta, "steps": steps,
            "ema_decay": 1 - 8 / steps}


def sweep_vae(profile: Profile, name: str, device: torch.device | str = "cpu", retrain: bool = False, *,
              steps: int | None = None, checkpoint_path: str | Path | None = None) -> tuple[VAE, dict]:
    """The sweep VAE ``name`` (``sweep_recipe``) for ``profile``: loaded from its artifact, else trained with
    ``train_vae`` and saved. A point whose recipe is the chapter's VAE's (beta = 1 in the laptop profile) is
    that VAE, ``chapter2_vae``: one model, one artifact."""
    recipe_fn = lambda p: sweep_recipe(p, name)  # noqa: E731
    recipe_fn(profile)  # checks the name before any work
    if same_model(name, profile) == "ch02_vae":  # this point of the sweep is the chapter's VAE (laptop)
        return chapter2_vae(profile, device, retrain, steps=steps, checkpoint_path=checkpoint_path, stand_in=False)
    return _train_or_load(f"{name}-{profile.name}", _build_vae, profile, device, retrain, recipe_fn, train_vae,
                          steps, checkpoint_path, model_config_fn=_vae_config, stand_in=False)


def same_model(name: str, profile: Profile) -> str:
    """The model that ``name`` (a key of MODELS) is in ``profile``: "ch02_vae" for a sweep point whose recipe is
    the chapter VAE's (``sweep_vae`` loads or trains that VAE), else ``name`` itself."""
    if name in SWEEP and sweep_recipe(profile, name) == vae_recipe(profile):
        return "ch02_vae"
    return name


def _vae_config(recipe: dict[str, Any]) -> VAEConfig:
    return VAEConfig(**recipe["model"])


def _sweep(name: str):
    return lambda profile, device="cpu", retrain=False, **kw: sweep_vae(profile, name, device, retrain, **kw)


# Train-or-load functions by artifact base name (artifact NAME-PROFILE), for scripts/train.py.
MODELS = {"ch02_vae": chapter2_vae, **{name: _sweep(name) for name in SWEEP}}
