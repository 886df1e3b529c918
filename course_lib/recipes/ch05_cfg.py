"""Chapter 5's recipes: the evaluation classifier, the noise-aware classifier and the class-conditional
U-Net (classifier-free guidance), per profile, trained or loaded.

    classifier_recipe(profile)            the evaluation classifier (a ResNet-9 on clean images)
    noisy_classifier_recipe(profile)      ... and its time-conditioned variant on x_t (classifier guidance)
    train_classifier(recipe, images, labels, ...)   trains either with the shared training loop
    evaluate_classifier(model, images, labels)      top-1 accuracy (on test images, or on generated ones)
    chapter5_classifier(profile, device)  load the saved evaluation classifier, or train and save it
    chapter5_noisy_classifier(profile, device)      the same for the noise-aware classifier
    cfg_recipe(profile)                   the class-conditional U-Net: chapter 3's recipe plus labels
    init_from_chapter3(model, name)       starts it from chapter 3's U-Net (label embedding at zero)
    train_cfg(recipe, images, labels, ...)          trains it with label dropout (classifier-free guidance)
    chapter5_unet(profile, device)        load the saved class-conditional U-Net, or train and save it
    MODELS                                name -> train-or-load function (scripts/train.py)
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from ..course.profiles import PROFILES, Profile
from ..data.cifar import image_batches, load_cifar10, to_float
from ..models.classifier import Classifier, ClassifierConfig
from ..models.unet import UNet
from ..process.classifier_guidance import ClassifierLoss, NoisyClassifierLoss
from ..process.guidance import LabelDropoutLoss
from ..process.schedules import make_schedule
from ..training.loop import TrainResult, train
from .ch03_ddpm import _build_unet, chapter3_unet, ddpm_recipe, train_ddpm, unet_config
from .common import _model_fields, _train_or_load, train_config


def classifier_recipe(profile: Profile) -> dict[str, Any]:
    """The chapter 5 evaluation classifier per profile: a ResNet-9 (a named ClassifierConfig) trained on
    clean CIFAR-10 with flips and translations by up to 4 px, AdamW at a constant rate after warm-up,
    label smoothing, EMA weights whose batch-norm statistics are re-estimated at the end. The aim (not yet
    measured): about 90% or more test accuracy (``standard``: a few minutes on one GPU; ``small``, laptop:
    about an hour on a 2-core CPU)."""
    common = dict(lr=2e-3, weight_decay=5e-2, label_smoothing=0.1, crop=4)
    return profile.choose(
        smoke=dict(model="tiny", steps=150, batch=64, warmup=15, ema_decay=0.98, train_images=5_000,
                   test_images=1_000, **common),
        # laptop: half width, a quarter of the flops (ResNet-9 standard: about 5 CPU-hours for these steps,
        # small: about 1.3 h, scripts/estimate_laptop.py --training); provisional until its test accuracy is
        # measured (aim: 90%)
        laptop=dict(model="small", steps=2_500, batch=256, warmup=200, ema_decay=0.999, train_images=None,
                    test_images=None, **common),
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
    sizes = {"tiny": ClassifierConfig.tiny, "small": ClassifierConfig.small,
             "standard": ClassifierConfig.standard}[recipe["model"]]
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
                          metrics_fn=_test_accuracy, model_config_fn=classifier_config)


def chapter5_noisy_classifier(profile: Profile, device: torch.device | str = "cpu", retrain: bool = False, *,
                              steps: int | None = None,
                              checkpoint_path: str | Path | None = None) -> tuple[Classifier, dict]:
    """The noise-aware classifier p_phi(y | x_t, t) for classifier guidance with the chapter 3 U-Net, as
    ``chapter5_classifier`` (no metrics recorded)."""
    return _train_or_load(f"ch05_noisy_classifier-{profile.name}", _build_classifier, profile, device, retrain,
                          noisy_classifier_recipe, train_classifier, steps, checkpoint_path, labels=True,
                          model_config_fn=classifier_config)


def cfg_recipe(profile: Profile) -> dict[str, Any]:
    """The chapter 5 class-conditional U-Net per profile: the chapter 3 recipe (``ddpm_recipe``: sizes,
    schedule, training settings) with CIFAR-10's 10 classes and labels dropped with probability 0.1
    (CFG Sec. 4: of 0.1, 0.2 and 0.5, the two smaller worked best). ``init`` names the chapter 3 artifact
    that training starts from (its weights, the label embedding at zero: at step 0 the model is chapter 3's
    unconditional one for every label), or None to start from scratch."""
    ddpm = ddpm_recipe(profile)
    # laptop: a fine-tune of chapter 3's published U-Net instead of its 12.6 CPU-hours from scratch
    # (provisional: sized in issue 19); smoke fine-tunes chapter 3's smoke U-Net the same way, so that CI
    # runs the laptop path (and in a third of the steps)
    init = f"ch03_unet-{profile.name}"
    return {**ddpm, "num_classes": 10, "p_uncond": 0.1, "init": None,
            **profile.choose(smoke=dict(init=init, steps=100, warmup=10),
                             laptop=dict(init=init, steps=10_000, warmup=500), colab={}, full={})}


def init_from_chapter3(model: UNet, name: str) -> dict[str, Any]:
    """Loads chapter 3's artifact ``name`` (e.g. "ch03_unet-laptop": cached, published or trained now) into
    ``model``, a U-Net of its sizes: a class-conditional one gets its label embedding set to zero, so that it
    starts as chapter 3's unconditional model for every label (chapter 5); an unconditional one starts as
    chapter 3's network (chapter 8's flow, which then learns another target). Returns the artifact's
    record. Refuses an artifact whose weights do not fit (another U-Net size)."""
    base, _, profile = name.rpartition("-")
    if base != "ch03_unet" or profile not in PROFILES:
        raise ValueError(f"init must name a chapter 3 U-Net artifact 'ch03_unet-<profile>', got {name!r}")
    source, meta = chapter3_unet(PROFILES[profile], next(model.parameters()).device, stand_in=False)
    wanted = replace(model.config, num_classes=None)
    if source.config != wanted:
        diff = {k: (v, getattr(wanted, k)) for k, v in asdict(source.config).items() if getattr(wanted, k) != v}
        raise ValueError(f"{name} does not fit this U-Net: (its, this U-Net's) sizes differ in {diff}")
    missing, unexpected = model.load_state_dict(source.state_dict(), strict=False)
    assert not unexpected and {k.split(".")[0] for k in missing} <= {"label_emb"}, (missing, unexpected)
    note = ""
    if model.config.num_classes is not None:
        with torch.no_grad():
            model.label_emb.weight.zero_()
        note = ", label embedding at zero"
    print(f"starting from {name} (SHA-256 {meta['sha256'][:12]}...){note}")
    return meta


def train_cfg(recipe: dict[str, Any], images: torch.Tensor, labels: torch.Tensor, *, steps: int | None = None,
              model: UNet | None = None, seed: int = 0, progress: bool = True, checkpoint_path=None) -> TrainResult:
    """Trains a class-conditional U-Net (eps prediction, the recipe's schedule) on uint8 ``images``
    (N, 3, 32, 32) and ``labels`` (N,) with ``LabelDropoutLoss`` (CFG Alg. 1), continuing ``model`` if given,
    else starting from the recipe's ``init`` (``init_from_chapter3``) or from scratch."""
    torch.manual_seed(seed)
    if model is None:
        model = UNet(unet_config(recipe, num_classes=recipe["num_classes"])).to(images.device)
        if recipe.get("init"):  # a resumed run then replaces these weights with its checkpoint's
            init_from_chapter3(model, recipe["init"])
    loss = LabelDropoutLoss(make_schedule(recipe["schedule"], recipe["num_steps"]), p_uncond=recipe["p_uncond"],
                            num_classes=recipe["num_classes"])
    return train_ddpm(recipe, images, loss_fn=loss, steps=steps, model=model, seed=seed, progress=progress,
                      checkpoint_path=checkpoint_path, labels=labels)


def chapter5_unet(profile: Profile, device: torch.device | str = "cpu", retrain: bool = False, *,
                  steps: int | None = None, checkpoint_path: str | Path | None = None,
                  stand_in: bool = True) -> tuple[UNet, dict]:
    """The chapter 5 class-conditional EMA U-Net for ``profile``: loaded from its artifact, else trained with
    ``train_cfg`` on CIFAR-10's training set and saved. ``steps``, ``checkpoint_path`` and ``stand_in`` as in
    ``chapter3_unet`` (chapter 5 itself passes ``stand_in=False``: it trains its own model)."""
    return _train_or_load(f"ch05_unet-{profile.name}", _build_unet, profile, device, retrain, cfg_recipe, train_cfg,
                          steps, checkpoint_path, labels=True, stand_in=stand_in,
                          model_config_fn=lambda r: unet_config(r, num_classes=r["num_classes"]))


# Train-or-load functions by artifact base name (artifact NAME-PROFILE), for scripts/train.py.
MODELS: dict[str, Callable[..., tuple[nn.Module, dict]]] = {
    "ch05_classifier": chapter5_classifier,
    "ch05_noisy_classifier": chapter5_noisy_classifier,
    "ch05_unet": chapter5_unet,
}
