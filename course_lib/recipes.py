"""Recipes: how each reusable model is trained at each profile, in one place, so the chapter that
introduces a model and the later chapters that load it (or train it again) use the same function.

    vae_recipe(profile)                   the chapter 2 VAE's sizes and schedule
    train_vae(recipe, images, ...)        trains one VAE with the shared training loop
    chapter2_vae(profile, device)         load the saved chapter 2 VAE, or train and save it
    ddpm_recipe(profile)                  the chapter 3 U-Net's sizes and schedule
    train_ddpm(recipe, images, ...)       trains one epsilon-prediction U-Net (DDPM's simple loss)
    chapter3_unet(profile, device)        load the saved chapter 3 U-Net, or train and save it
    REUSABLE_MODELS                       name -> its train-or-load function (what scripts/train.py trains)

Under torchrun (see course_lib.distributed) every rank trains; rank 0 alone writes the artifact.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import torch

from . import distributed as dist
from .artifacts import ArtifactMissingError, load_artifact, save_artifact
from .registry import resolve_artifact
from .data.cifar import image_batches, load_cifar10
from .diffusion import EpsilonLoss
from .models.unet import UNet, UNetConfig
from .models.vae import VAE, VAEConfig
from .schedules import make_schedule
from .profiles import Profile
from .training import TrainConfig, TrainResult, train
from .vae import VAELoss


def vae_recipe(profile: Profile) -> dict[str, Any]:
    """The chapter 2 VAE per profile: model sizes (VAEConfig fields) and training settings."""
    return profile.choose(
        smoke=dict(model=dict(base_channels=16, channel_mult=(1, 2, 2), blocks_per_level=1, latent_channels=4),
                   steps=200, batch=32, lr=1e-3, beta=1.0, ema_decay=0.99, train_images=2_000),
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


def _model_fields(config: dict[str, Any]) -> dict[str, Any]:
    """A saved artifact's model config as dataclass fields (JSON stores tuples as lists)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in config["model"].items()}


def _build_vae(config: dict[str, Any]) -> VAE:
    return VAE(VAEConfig(**_model_fields(config)))


def _train_or_load(name: str, build, profile: Profile, device, retrain: bool, recipe_fn, train_fn,
                   steps: int | None = None, checkpoint_path: str | Path | None = None):
    """Loads artifact ``name``; if it is missing (or ``retrain``), trains ``train_fn(recipe, images)`` on
    CIFAR-10's training set with ``recipe_fn(profile)`` (its ``steps`` replaced if given; resuming from
    ``checkpoint_path`` if it exists), saves the EMA model and loads it back.
    A corrupted artifact is an error, never retrained over silently."""
    if not retrain:
        try:
            return resolve_artifact(name, build, map_location=device)  # local cache, else the registry's download
        except ArtifactMissingError as err:
            print(f"{err}\nTraining it now with {train_fn.__name__} ({profile.name} recipe).")
    recipe = recipe_fn(profile)
    if steps is not None:
        recipe = {**recipe, "steps": steps}
    with dist.main_first():  # rank 0 decodes CIFAR-10 into the cache; the other ranks then read it
        data = load_cifar10("train", subset=recipe["train_images"])
    result = train_fn(recipe, data.images.to(device), checkpoint_path=checkpoint_path)
    if dist.is_main():
        config = {"model": asdict(result.ema.config), "recipe": recipe, "data": data.source_id,
                  "processes": dist.world_size()}
        save_artifact(name, result.ema, config, profile=profile.name,
                      produced_by=f"course_lib.recipes.{train_fn.__name__}", seconds=result.seconds)
    dist.barrier()  # the other ranks wait for the files
    return load_artifact(name, build, map_location=device)


def chapter2_vae(profile: Profile, device: torch.device | str = "cpu", retrain: bool = False, *,
                 steps: int | None = None, checkpoint_path: str | Path | None = None) -> tuple[VAE, dict]:
    """The chapter 2 VAE for ``profile``: loaded from its artifact, else trained with ``train_vae`` on
    CIFAR-10's training set and saved (what chapter 6 calls). ``steps`` replaces the recipe's (tests);
    ``checkpoint_path``: resume from it and save to it."""
    return _train_or_load(f"ch02_vae-{profile.name}", _build_vae, profile, device, retrain, vae_recipe, train_vae,
                          steps, checkpoint_path)


def ddpm_recipe(profile: Profile) -> dict[str, Any]:
    """The chapter 3 DDPM per profile: U-Net sizes (a named UNetConfig), schedule and training settings.
    ``full`` is DDPM's CIFAR-10 recipe (lr 2e-4, warm-up 5k, batch 128, EMA 0.9999) at fewer steps."""
    return profile.choose(
        smoke=dict(unet="tiny", schedule="linear", num_steps=1000, steps=300, batch=32, lr=1e-3, warmup=30,
                   ema_decay=0.99, train_images=2_000),
        colab=dict(unet="small", schedule="linear", num_steps=1000, steps=30_000, batch=128, lr=2e-4, warmup=1_000,
                   ema_decay=0.9995, train_images=None),
        full=dict(unet="ddpm_cifar10", schedule="linear", num_steps=1000, steps=100_000, batch=128, lr=2e-4,
                  warmup=5_000, ema_decay=0.9999, train_images=None),
    )


def unet_config(recipe: dict[str, Any], **overrides) -> UNetConfig:
    return {"tiny": UNetConfig.tiny, "small": UNetConfig.small, "ddpm_cifar10": UNetConfig.ddpm_cifar10}[recipe["unet"]](**overrides)


def train_ddpm(recipe: dict[str, Any], images: torch.Tensor, *, loss_fn=None, steps: int | None = None,
               schedule_name: str | None = None, model: UNet | None = None, seed: int = 0, progress: bool = True,
               checkpoint_path=None) -> TrainResult:
    """Trains a U-Net on uint8 ``images`` (N, 3, 32, 32) on their device with DDPM's simple loss
    (or ``loss_fn(model, x0)``), continuing ``model`` if given. Returns the loop's result."""
    torch.manual_seed(seed)
    schedule = make_schedule(schedule_name or recipe["schedule"], recipe["num_steps"])
    model = model if model is not None else UNet(unet_config(recipe)).to(images.device)
    gen = torch.Generator(images.device).manual_seed(seed)
    n = steps if steps is not None else recipe["steps"]
    cfg = TrainConfig(steps=n, lr=recipe["lr"], warmup_steps=recipe["warmup"], ema_decay=recipe["ema_decay"],
                      log_every=max(1, n // 25), progress=progress, checkpoint_path=checkpoint_path,
                      checkpoint_every=max(1, n // 20))
    return train(model, loss_fn or EpsilonLoss(schedule), image_batches(images, recipe["batch"], generator=gen), cfg)


def _build_unet(config: dict[str, Any]) -> UNet:
    return UNet(UNetConfig(**_model_fields(config)))


def chapter3_unet(profile: Profile, device: torch.device | str = "cpu", retrain: bool = False, *,
                  steps: int | None = None, checkpoint_path: str | Path | None = None) -> tuple[UNet, dict]:
    """The chapter 3 EMA U-Net for ``profile`` (epsilon prediction, the recipe's schedule): loaded from its
    artifact, else trained with ``train_ddpm`` on CIFAR-10's training set and saved (what chapter 4 calls).
    ``steps`` and ``checkpoint_path`` as in ``chapter2_vae``."""
    return _train_or_load(f"ch03_unet-{profile.name}", _build_unet, profile, device, retrain, ddpm_recipe, train_ddpm,
                          steps, checkpoint_path)


# The reusable models by name (their artifact is NAME-PROFILE): scripts/train.py trains them with the
# chapters' own train-or-load functions, so a model trained there is the one the chapters load.
REUSABLE_MODELS: dict[str, Callable[..., tuple[torch.nn.Module, dict]]] = {
    "ch02_vae": chapter2_vae,
    "ch03_unet": chapter3_unet,
}
