"""Recipes: how each reusable model is trained at each profile, in one place, so the chapter that
introduces a model and the later chapters that load it (or train it again) use the same function.

    vae_recipe(profile)                   the chapter 2 VAE's sizes and schedule
    train_vae(recipe, images, ...)        trains one VAE with the shared training loop
    chapter2_vae(profile, device)         load the saved chapter 2 VAE, or train and save it
    ddpm_recipe(profile)                  the chapter 3 U-Net's sizes and schedule
    train_ddpm(recipe, images, ...)       trains one epsilon-prediction U-Net (DDPM's simple loss)
    chapter3_unet(profile, device)        load the saved chapter 3 U-Net, or train and save it
    classifier_recipe(profile)            the chapter 5 evaluation classifier (a ResNet-9 on clean images)
    noisy_classifier_recipe(profile)      ... and its time-conditioned variant on x_t (classifier guidance)
    train_classifier(recipe, images, labels, ...)   trains either with the shared training loop
    evaluate_classifier(model, images, labels)      top-1 accuracy (on test images, or on generated ones)
    chapter5_classifier(profile, device)  load the saved evaluation classifier, or train and save it
    chapter5_noisy_classifier(profile, device)      the same for the noise-aware classifier
    cfg_recipe(profile)                   the chapter 5 class-conditional U-Net: ddpm_recipe plus labels
    train_cfg(recipe, images, labels, ...)          trains it with label dropout (classifier-free guidance)
    chapter5_unet(profile, device)        load the saved class-conditional U-Net, or train and save it
    REUSABLE_MODELS                       name -> its train-or-load function (what scripts/train.py trains)

Under torchrun (see course_lib.distributed) every rank trains; rank 0 alone writes the artifact.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from . import distributed as dist
from .artifacts import ArtifactMissingError, load_artifact, save_artifact
from .registry import resolve_artifact
from .data.cifar import image_batches, load_cifar10, to_float
from .diffusion import EpsilonLoss
from .guidance import ClassifierLoss, LabelDropoutLoss, NoisyClassifierLoss
from .models.classifier import Classifier, ClassifierConfig
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


def train_config(recipe: dict[str, Any], steps: int | None = None, progress: bool = True, checkpoint_path=None,
                 **overrides) -> TrainConfig:
    """The shared loop's settings from a recipe's ``steps``, ``lr``, ``warmup`` and ``ema_decay`` (``steps``
    replaced if given), logging 25 times and checkpointing 20 times per run, and, with a checkpoint, keeping
    14 snapshots of the EMA weights for "samples over training"; ``overrides``: other fields."""
    n = steps if steps is not None else recipe["steps"]
    snapshots = max(1, n // 14) if checkpoint_path is not None else 0
    return TrainConfig(**{"steps": n, "lr": recipe["lr"], "warmup_steps": recipe["warmup"],
                          "ema_decay": recipe["ema_decay"], "log_every": max(1, n // 25), "progress": progress,
                          "checkpoint_path": checkpoint_path, "checkpoint_every": max(1, n // 20),
                          "snapshot_every": snapshots, **overrides})


def load_if_saved(name: str, build, device, then: str):
    """Artifact ``name`` from the local cache or the registry's download, or None after saying that it is
    missing and what happens ``then`` (e.g. "Training it now with train_ddpm (smoke recipe).")."""
    try:
        return resolve_artifact(name, build, map_location=device)
    except ArtifactMissingError as err:
        print(f"{err}\n{then}")
        return None


def _model_fields(config: dict[str, Any]) -> dict[str, Any]:
    """A saved artifact's model config as dataclass fields (JSON stores tuples as lists)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in config["model"].items()}


def _build_vae(config: dict[str, Any]) -> VAE:
    return VAE(VAEConfig(**_model_fields(config)))


def _train_or_load(name: str, build, profile: Profile, device, retrain: bool, recipe_fn, train_fn,
                   steps: int | None = None, checkpoint_path: str | Path | None = None, *, labels: bool = False,
                   metrics_fn: Callable[[nn.Module, dict], dict[str, float]] | None = None):
    """Loads artifact ``name``; if it is missing (or ``retrain``), trains ``train_fn(recipe, images)``
    (``train_fn(recipe, images, labels)`` if ``labels``) on CIFAR-10's training set with ``recipe_fn(profile)``
    (its ``steps`` replaced if given; resuming from ``checkpoint_path`` if it exists), saves the EMA model
    with ``metrics_fn(ema_model, recipe)`` if given, and loads it back.
    A corrupted artifact is an error, never retrained over silently."""
    if not retrain and (saved := load_if_saved(name, build, device,
                                               f"Training it now with {train_fn.__name__} ({profile.name} recipe).")):
        return saved
    recipe = recipe_fn(profile)
    if steps is not None:
        recipe = {**recipe, "steps": steps}
    with dist.main_first():  # rank 0 decodes CIFAR-10 into the cache; the other ranks then read it
        data = load_cifar10("train", subset=recipe["train_images"])
    inputs = (data.images.to(device), data.labels.to(device)) if labels else (data.images.to(device),)
    result = train_fn(recipe, *inputs, checkpoint_path=checkpoint_path)
    if dist.is_main():
        config = {"model": asdict(result.ema.config), "recipe": recipe, "data": data.source_id,
                  "processes": dist.world_size()}
        save_artifact(name, result.ema, config, profile=profile.name,
                      produced_by=f"{train_fn.__module__}.{train_fn.__name__}", seconds=result.total_seconds,
                      history=result.history,
                      metrics=metrics_fn(result.ema, recipe) if metrics_fn else None)
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
        # laptop: 1.1M parameters at about 63 images/s on 2 cores: 35k steps of 64 are about 10 CPU-hours
        # (45 epochs), trained in chunks by scripts/train.py; constant rate after warm-up, so a chunk's
        # schedule does not depend on when the run stops; EMA half-life about 1,400 steps
        laptop=dict(unet="laptop", schedule="linear", num_steps=1000, steps=35_000, batch=64, lr=3e-4,
                    warmup=1_000, ema_decay=0.9995, train_images=None),
        colab=dict(unet="small", schedule="linear", num_steps=1000, steps=30_000, batch=128, lr=2e-4, warmup=1_000,
                   ema_decay=0.9995, train_images=None),
        full=dict(unet="ddpm_cifar10", schedule="linear", num_steps=1000, steps=100_000, batch=128, lr=2e-4,
                  warmup=5_000, ema_decay=0.9999, train_images=None),
    )


def unet_config(recipe: dict[str, Any], **overrides) -> UNetConfig:
    sizes = {"tiny": UNetConfig.tiny, "laptop": UNetConfig.laptop, "small": UNetConfig.small,
             "ddpm_cifar10": UNetConfig.ddpm_cifar10}
    return sizes[recipe["unet"]](**overrides)


def train_ddpm(recipe: dict[str, Any], images: torch.Tensor, *, loss_fn=None, steps: int | None = None,
               schedule_name: str | None = None, model: UNet | None = None, seed: int = 0, progress: bool = True,
               checkpoint_path=None, labels: torch.Tensor | None = None) -> TrainResult:
    """Trains a U-Net on uint8 ``images`` (N, 3, 32, 32) on their device with DDPM's simple loss
    (or ``loss_fn(model, x0)``), continuing ``model`` if given. With ``labels`` (N,), the batches are
    pairs (x0, y) for ``loss_fn(model, (x0, y))`` (see ``train_cfg``). Returns the loop's result."""
    torch.manual_seed(seed)
    schedule = make_schedule(schedule_name or recipe["schedule"], recipe["num_steps"])
    model = model if model is not None else UNet(unet_config(recipe)).to(images.device)
    gen = torch.Generator(images.device).manual_seed(seed)
    labels = labels.to(images.device) if labels is not None else None
    batches = image_batches(images, recipe["batch"], labels=labels, generator=gen)
    return train(model, loss_fn or EpsilonLoss(schedule), batches, train_config(recipe, steps, progress, checkpoint_path))


def _build_unet(config: dict[str, Any]) -> UNet:
    return UNet(UNetConfig(**_model_fields(config)))


def chapter3_unet(profile: Profile, device: torch.device | str = "cpu", retrain: bool = False, *,
                  steps: int | None = None, checkpoint_path: str | Path | None = None) -> tuple[UNet, dict]:
    """The chapter 3 EMA U-Net for ``profile`` (epsilon prediction, the recipe's schedule): loaded from its
    artifact, else trained with ``train_ddpm`` on CIFAR-10's training set and saved (what chapter 4 calls).
    ``steps`` and ``checkpoint_path`` as in ``chapter2_vae``."""
    return _train_or_load(f"ch03_unet-{profile.name}", _build_unet, profile, device, retrain, ddpm_recipe, train_ddpm,
                          steps, checkpoint_path)


# ---- chapter 5: the classifiers and the class-conditional U-Net ------------------------------------

def classifier_recipe(profile: Profile) -> dict[str, Any]:
    """The chapter 5 evaluation classifier per profile: a ResNet-9 (a named ClassifierConfig) trained on
    clean CIFAR-10 with flips and translations by up to 4 px, AdamW at a constant rate after warm-up,
    label smoothing, EMA weights whose batch-norm statistics are re-estimated at the end. The aim at the
    ``standard`` size (not yet measured): about 90% or more test accuracy in a few minutes on one GPU."""
    common = dict(lr=2e-3, weight_decay=5e-2, label_smoothing=0.1, crop=4)
    return profile.choose(
        smoke=dict(model="tiny", steps=300, batch=64, warmup=30, ema_decay=0.99, train_images=5_000,
                   test_images=1_000, **common),
        laptop=dict(model="standard", steps=2_500, batch=256, warmup=200, ema_decay=0.999, train_images=None,
                    test_images=None, **common),  # provisional: sized in issue 19 (chapter 5)
        colab=dict(model="standard", steps=2_500, batch=512, warmup=200, ema_decay=0.999, train_images=None,
                   test_images=None, **common),  # about 25 epochs
        full=dict(model="standard", steps=4_000, batch=512, warmup=200, ema_decay=0.999, train_images=None,
                  test_images=None, **common),  # about 40 epochs
    )


def noisy_classifier_recipe(profile: Profile) -> dict[str, Any]:
    """The noise-aware classifier p_phi(y | x_t, t) for classifier guidance: the evaluation classifier's
    recipe, time-conditioned and trained on x_t with the chapter 3 U-Net's schedule (Dhariwal & Nichol 2021)."""
    ddpm = ddpm_recipe(profile)
    return {**classifier_recipe(profile), "time_conditioned": True, "schedule": ddpm["schedule"],
            "num_steps": ddpm["num_steps"]}


def classifier_config(recipe: dict[str, Any], **overrides) -> ClassifierConfig:
    sizes = {"tiny": ClassifierConfig.tiny, "standard": ClassifierConfig.standard}[recipe["model"]]
    return sizes(**{"time_conditioned": recipe.get("time_conditioned", False), **overrides})


@torch.no_grad()
def _refresh_batchnorm(model: nn.Module, loss: ClassifierLoss, batches, num_batches: int = 50) -> None:
    """Batch-norm statistics for EMA weights: the EMA copies the live model's running statistics, which
    belong to other weights, so re-estimate them as plain averages over training batches (as
    ``torch.optim.swa_utils.update_bn`` does for averaged weights)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches below
    model.train()
    for _ in range(num_batches):
        x, t = loss.inputs(next(batches)[0])
        model(x) if t is None else model(x, t)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.eval()


def train_classifier(recipe: dict[str, Any], images: torch.Tensor, labels: torch.Tensor, *, steps: int | None = None,
                     model: Classifier | None = None, seed: int = 0, progress: bool = True,
                     checkpoint_path=None) -> TrainResult:
    """Trains a classifier on uint8 ``images`` (N, 3, 32, 32) and ``labels`` (N,) on the images' device with
    cross-entropy: on clean images (``ClassifierLoss``), or on x_t (``NoisyClassifierLoss``) when the recipe
    is time-conditioned. Returns the loop's result; ``result.ema`` (batch-norm statistics re-estimated) is
    the model to use."""
    torch.manual_seed(seed)
    model = model if model is not None else Classifier(classifier_config(recipe)).to(images.device)
    if recipe.get("time_conditioned"):
        loss = NoisyClassifierLoss(make_schedule(recipe["schedule"], recipe["num_steps"]), recipe["label_smoothing"])
    else:
        loss = ClassifierLoss(recipe["label_smoothing"])
    gen = torch.Generator(images.device).manual_seed(seed)
    batches = image_batches(images, recipe["batch"], labels=labels.to(images.device), crop=recipe["crop"],
                            generator=gen)
    result = train(model, loss, batches, train_config(recipe, steps, progress, checkpoint_path,
                                                      weight_decay=recipe["weight_decay"]))
    _refresh_batchnorm(result.ema, loss, batches)
    return result


@torch.no_grad()
def evaluate_classifier(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> float:
    """Top-1 accuracy of a clean-image classifier ``model(x)`` on ``images``: uint8 (N, 3, H, W) in 0..255,
    or float in [-1, 1] (what the samplers return); ``labels`` (N,). On generated images, with the labels
    they were generated for, this is how often a sample is recognised as its class."""
    if images.shape[:1] != labels.shape:
        raise ValueError(f"labels must have shape ({images.shape[0]},), got {tuple(labels.shape)}")
    device = next(model.parameters()).device
    model.eval()
    correct = 0
    for i in range(0, images.shape[0], batch_size):
        x = images[i:i + batch_size].to(device)
        x = to_float(x) if x.dtype == torch.uint8 else x.float()
        correct += int((model(x).argmax(1) == labels[i:i + batch_size].to(device)).sum())
    return correct / max(images.shape[0], 1)


def _test_accuracy(model: nn.Module, recipe: dict[str, Any]) -> dict[str, float]:
    test = load_cifar10("test", subset=recipe["test_images"])
    return {"test_accuracy": evaluate_classifier(model, test.images, test.labels), "test_images": len(test.images)}


def _build_classifier(config: dict[str, Any]) -> Classifier:
    return Classifier(ClassifierConfig(**_model_fields(config)))


def chapter5_classifier(profile: Profile, device: torch.device | str = "cpu", retrain: bool = False, *,
                        steps: int | None = None, checkpoint_path: str | Path | None = None) -> tuple[Classifier, dict]:
    """The chapter 5 evaluation classifier for ``profile``: loaded from its artifact, else trained with
    ``train_classifier`` on CIFAR-10's training set and saved with its test accuracy
    (``meta["metrics"]["test_accuracy"]``). ``steps`` and ``checkpoint_path`` as in ``chapter2_vae``."""
    return _train_or_load(f"ch05_classifier-{profile.name}", _build_classifier, profile, device, retrain,
                          classifier_recipe, train_classifier, steps, checkpoint_path, labels=True,
                          metrics_fn=_test_accuracy)


def chapter5_noisy_classifier(profile: Profile, device: torch.device | str = "cpu", retrain: bool = False, *,
                              steps: int | None = None,
                              checkpoint_path: str | Path | None = None) -> tuple[Classifier, dict]:
    """The noise-aware classifier p_phi(y | x_t, t) for classifier guidance with the chapter 3 U-Net, as
    ``chapter5_classifier`` (no metrics recorded)."""
    return _train_or_load(f"ch05_noisy_classifier-{profile.name}", _build_classifier, profile, device, retrain,
                          noisy_classifier_recipe, train_classifier, steps, checkpoint_path, labels=True)


def cfg_recipe(profile: Profile) -> dict[str, Any]:
    """The chapter 5 class-conditional U-Net per profile: the chapter 3 recipe (``ddpm_recipe``: sizes,
    schedule, training settings) with CIFAR-10's 10 classes and labels dropped with probability 0.1
    (CFG Sec. 4: of 0.1, 0.2 and 0.5, the two smaller worked best)."""
    return {**ddpm_recipe(profile), "num_classes": 10, "p_uncond": 0.1}


def train_cfg(recipe: dict[str, Any], images: torch.Tensor, labels: torch.Tensor, *, steps: int | None = None,
              model: UNet | None = None, seed: int = 0, progress: bool = True, checkpoint_path=None) -> TrainResult:
    """Trains a class-conditional U-Net (eps prediction, the recipe's schedule) on uint8 ``images``
    (N, 3, 32, 32) and ``labels`` (N,) with ``LabelDropoutLoss`` (CFG Alg. 1), continuing ``model`` if given."""
    torch.manual_seed(seed)
    if model is None:
        model = UNet(unet_config(recipe, num_classes=recipe["num_classes"])).to(images.device)
    loss = LabelDropoutLoss(make_schedule(recipe["schedule"], recipe["num_steps"]), p_uncond=recipe["p_uncond"],
                            num_classes=recipe["num_classes"])
    return train_ddpm(recipe, images, loss_fn=loss, steps=steps, model=model, seed=seed, progress=progress,
                      checkpoint_path=checkpoint_path, labels=labels)


def chapter5_unet(profile: Profile, device: torch.device | str = "cpu", retrain: bool = False, *,
                  steps: int | None = None, checkpoint_path: str | Path | None = None) -> tuple[UNet, dict]:
    """The chapter 5 class-conditional EMA U-Net for ``profile``: loaded from its artifact, else trained with
    ``train_cfg`` on CIFAR-10's training set and saved. ``steps`` and ``checkpoint_path`` as in ``chapter2_vae``."""
    return _train_or_load(f"ch05_unet-{profile.name}", _build_unet, profile, device, retrain, cfg_recipe, train_cfg,
                          steps, checkpoint_path, labels=True)


# The reusable models of chapters 2-5 by name (their artifact is NAME-PROFILE): scripts/train.py trains them
# (and those of latent_recipes and dit_recipes, which import this module) with the chapters' own train-or-load
# functions, so a model trained there is the one the chapters load.
REUSABLE_MODELS: dict[str, Callable[..., tuple[torch.nn.Module, dict]]] = {
    "ch02_vae": chapter2_vae,
    "ch03_unet": chapter3_unet,
    "ch05_classifier": chapter5_classifier,
    "ch05_noisy_classifier": chapter5_noisy_classifier,
    "ch05_unet": chapter5_unet,
}
