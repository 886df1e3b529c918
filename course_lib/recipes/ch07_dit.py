"""Chapter 7's recipes: class-conditional DiTs on the latents of chapter 2's autoencoder (as DiT works in
Stable Diffusion's VAE latents), trained or loaded like chapter 6's model; a class-conditional U-Net on the
same latents trained at the main DiT's training compute; and LoRA fine-tuning of a trained DiT.

    dit_sizes(profile)                    (main size, sizes of the FID-against-Gflops plot) per profile
    dit_recipe(profile, size)             a DiT size's model and training settings at a profile
    dit_config(recipe, **overrides)       its DiTConfig
    chapter7_dit(profile, device, size=...)     load the saved DiT of that size, or train and save it
    unet_recipe(profile), unet_config(recipe)   the latent U-Net, at the main DiT's training flops
    chapter7_unet(profile, device)        load it, or train and save it
    train_latent(recipe, model, mu, logvar, labels, scale, ...)   trains either with label dropout (CFG)
    lora_recipe(profile)                  LoRA fine-tuning settings, as keywords of ``finetune_lora``
    finetune_lora(model, mu, logvar, labels, scale, ...)   a LoRA-adapted copy, fine-tuned on latents
    MODELS                                name -> train-or-load function (for scripts/train.py)

Time convention: integer steps t in {0, ..., T-1}, t = 0 nearest the data (see process/schedules.py).

DiT's ImageNet recipe (Peebles & Xie 2023, Sec. 4): AdamW at a constant 1e-4, no weight decay, no
warm-up, batch 256, EMA decay 0.9999, 400k steps for its ablations; the linear beta schedule with
T = 1000 (ADM's). ``full`` is that recipe at fewer steps; ``colab`` halves the batch; ``laptop`` trains
6,000 steps of 64 at 3e-4 after 500 warm-up steps, a CPU's budget. Chapter 2's latents are 4 x 8 x 8,
so a patch of 1 or 2 gives 64 or 16 tokens. The course adds two sizes below DiT-S (Table 1) for a CPU:
XXS (4 layers, width 128) and XS (6 layers, width 192). ``smoke`` trains DiT-tiny at each size's patch
for 200 steps (as DiT compares its configurations at equal steps).
"""

from __future__ import annotations

import copy
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from ..course.profiles import PROFILES, Profile
from ..data.latents import latent_batches
from ..evaluation.flops import model_gflops
from ..models.dit import DiT, DiTConfig
from ..models.lora import Target, add_lora
from ..models.unet import UNet, UNetConfig
from ..models.vae import VAEConfig
from ..process.guidance import LabelDropoutLoss
from ..process.schedules import make_schedule
from ..training.loop import TrainResult, train
from .ch02_vae import vae_recipe
from .ch06_ldm import UNET_SIZES, latent_training_set, ldm_recipe, save_latent_model
from .common import _model_fields, load_or_stand_in, train_config

SIZES = ("XXS/2", "XS/2", "XS/1", "S/2", "S/1", "B/2", "B/1")


def dit_sizes(profile: Profile) -> tuple[str, tuple[str, ...]]:
    """(the main DiT's size, the sizes of the FID-against-Gflops plot) at ``profile``: three sizes whose
    Gflops grow about 4x each time on a CPU (0.013, 0.045, 0.18 Gflops a forward pass), DiT-S and DiT-B
    on a GPU."""
    return profile.choose(smoke=("XS/1", ("XS/2", "XS/1")),
                          laptop=("XS/1", ("XXS/2", "XS/2", "XS/1")),
                          colab=("XS/1", ("XXS/2", "XS/2", "XS/1")),
                          full=("S/1", ("XS/2", "XS/1", "S/2", "S/1")))


def latent_shape(profile: Profile) -> tuple[int, int, int]:
    """(C, h, w) of the latents chapter 2's VAE gives at ``profile`` (4 x 8 x 8)."""
    return VAEConfig(**vae_recipe(profile)["model"]).latent_shape()


def dit_recipe(profile: Profile, size: str) -> dict[str, Any]:
    """DiT ``size`` (one of SIZES; smoke trains DiT-tiny at its patch size) at ``profile``: class-conditional on
    CIFAR-10's 10 classes, labels dropped with probability 0.1 (CFG Alg. 1), on chapter 2's latents."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    patch = int(size.split("/")[1])
    common = dict(size=size, schedule="linear", num_steps=1000, num_classes=10, p_uncond=0.1,
                  latent_shape=latent_shape(profile))
    return {**common, **profile.choose(
        smoke=dict(model=f"tiny/{patch}", steps=200, batch=32, lr=1e-3, warmup=10, ema_decay=0.99,
                   train_images=2_000),
        laptop=dict(model=size, steps=6_000, batch=64, lr=3e-4, warmup=500, ema_decay=0.999, train_images=None),
        colab=dict(model=size, steps=18_000, batch=128, lr=1e-4, warmup=0, ema_decay=0.9995, train_images=None),
        full=dict(model=size, steps=100_000, batch=256, lr=1e-4, warmup=0, ema_decay=0.9999, train_images=None),
    )}


def dit_config(recipe: dict[str, Any], **overrides) -> DiTConfig:
    """The recipe's DiTConfig on its latents (C x h x h), 10 classes (plus the null class)."""
    C, h, w = recipe["latent_shape"]
    fields = dict(input_size=h, in_channels=C, num_classes=recipe["num_classes"])
    return DiTConfig.named(recipe["model"], **{**fields, **overrides})


def unet_recipe(profile: Profile) -> dict[str, Any]:
    """The class-conditional U-Net on the same latents: chapter 6's U-Net (its ``ldm_recipe`` sizes, learning
    rate, warm-up and EMA) without text, with the main DiT's batch, trained for the steps that cost the main
    DiT's training flops (3 x forward flops x batch x steps, rounded to 100 steps)."""
    main = dit_recipe(profile, dit_sizes(profile)[0])
    ldm = ldm_recipe(profile)
    recipe = dict(unet=ldm["unet"], unet_overrides=ldm["unet_overrides"], schedule="linear", num_steps=1000,
                  num_classes=10, p_uncond=0.1, latent_shape=main["latent_shape"], batch=main["batch"],
                  lr=ldm["lr"], warmup=ldm["warmup"], ema_decay=ldm["ema_decay"], train_images=main["train_images"])
    with torch.device("meta"):  # counts flops without allocating weights
        ratio = model_gflops(DiT(dit_config(main))) / model_gflops(UNet(unet_config(recipe)))
    return {**recipe, "steps": max(100, round(main["steps"] * ratio / 100) * 100), "dit_steps": main["steps"],
            "dit_size": main["size"]}


def unet_config(recipe: dict[str, Any]) -> UNetConfig:
    """The recipe's class-conditional UNetConfig on its latents."""
    C, h, w = recipe["latent_shape"]
    return UNET_SIZES[recipe["unet"]](**{**recipe["unet_overrides"], "in_channels": C, "image_size": h,
                                         "num_classes": recipe["num_classes"]})


def train_latent(recipe: dict[str, Any], model: nn.Module, mu: torch.Tensor, logvar: torch.Tensor,
                 labels: torch.Tensor, scale: float, *, steps: int | None = None, seed: int = 0,
                 progress: bool = True, checkpoint_path=None) -> TrainResult:
    """Trains a class-conditional ``model`` (a DiT or a U-Net: ``model(x_t, t, y)``, eps prediction, the
    recipe's schedule) on scaled latents kappa z, z ~ q(z | x) drawn afresh from the posteriors (mu, logvar)
    (N, C, h, w), with ``labels`` (N,), with ``LabelDropoutLoss`` (CFG Alg. 1), in the shared loop."""
    torch.manual_seed(seed)
    loss = LabelDropoutLoss(make_schedule(recipe["schedule"], recipe["num_steps"]), p_uncond=recipe["p_uncond"],
                            num_classes=recipe["num_classes"])
    gen = torch.Generator(mu.device).manual_seed(seed)
    batches = latent_batches(mu, logvar, labels.to(mu.device), recipe["batch"], scale, generator=gen)
    return train(model, loss, batches, train_config(recipe, steps, progress, checkpoint_path))


def _build_dit(config: dict[str, Any]) -> DiT:
    return DiT(DiTConfig(**_model_fields(config)))


def _build_unet(config: dict[str, Any]) -> UNet:
    return UNet(UNetConfig(**_model_fields(config)))


def _train_or_load_latent(name: str, build: Callable, make_model: Callable[[dict], nn.Module], profile: Profile,
                          device, retrain: bool, recipe_fn: Callable[[Profile], dict], config_fn: Callable,
                          steps: int | None, checkpoint_path, stand_in: bool) -> tuple[nn.Module, dict]:
    """Artifact ``name``, or (missing, or ``retrain``) a model ``make_model(recipe)`` trained with
    ``train_latent`` on chapter 2's latents of CIFAR-10's training set, saved with the latent scale and the
    autoencoder's name and SHA-256 (``meta["config"]``), then loaded."""
    if not retrain and (saved := load_or_stand_in(name, build, profile, device,
                                                  f"Training it now with train_latent ({profile.name} recipe).",
                                                  recipe_fn=recipe_fn, model_config_fn=config_fn,
                                                  stand_in=stand_in)):
        return saved
    recipe = recipe_fn(profile) if steps is None else {**recipe_fn(profile), "steps": steps}
    d = latent_training_set(profile, recipe["train_images"], device)
    model = make_model(recipe).to(device)
    result = train_latent(recipe, model, d["mu"], d["logvar"], d["labels"], d["scale"],
                          checkpoint_path=checkpoint_path)
    return save_latent_model(name, result, asdict(result.ema.config), recipe, d, profile,
                             "course_lib.recipes.ch07_dit.train_latent", build, device)


def chapter7_dit(profile: Profile, device: torch.device | str = "cpu", retrain: bool = False, *, size: str,
                 steps: int | None = None, checkpoint_path: str | Path | None = None,
                 stand_in: bool = True) -> tuple[DiT, dict]:
    """The chapter 7 class-conditional EMA DiT of ``size`` for ``profile`` (artifact ``ch07_dit_XS1-laptop`` for
    XS/1 at laptop), on chapter 2's latents: loaded, else trained (``train_latent``) and saved with its loss
    history. ``meta["config"]`` holds the ``latent_scale`` and the autoencoder (``vae``, ``vae_sha256``);
    ``steps`` replaces the recipe's (tests); ``checkpoint_path``: resume from it and save to it;
    ``stand_in=False``: train this profile's model rather than load another profile's published one."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    name = f"ch07_dit_{size.replace('/', '')}-{profile.name}"
    recipe_fn = partial(dit_recipe, size=size)
    return _train_or_load_latent(name, _build_dit, lambda r: DiT(dit_config(r)), profile, device, retrain,
                                 recipe_fn, dit_config, steps, checkpoint_path, stand_in)


def chapter7_unet(profile: Profile, device: torch.device | str = "cpu", retrain: bool = False, *,
                  steps: int | None = None, checkpoint_path: str | Path | None = None,
                  stand_in: bool = True) -> tuple[UNet, dict]:
    """The class-conditional EMA U-Net on the same latents (artifact ``ch07_unet-PROFILE``), trained at the main
    DiT's training flops (``unet_recipe``); arguments and metadata as ``chapter7_dit``."""
    return _train_or_load_latent(f"ch07_unet-{profile.name}", _build_unet, lambda r: UNet(unet_config(r)), profile,
                                 device, retrain, unet_recipe, unet_config, steps, checkpoint_path, stand_in)


# ---- LoRA fine-tuning (Hu et al. 2022) -------------------------------------------------------------

def lora_recipe(profile: Profile) -> dict[str, Any]:
    """Keywords of ``finetune_lora`` per profile: rank and alpha (alpha = r, scale 1), steps, batch, lr, EMA, and
    ``p_uncond`` = 1: every label is dropped, so the adapters teach the unconditional model (the null class)
    the new data, as fine-tuning on a new domain without labels does."""
    return {"p_uncond": 1.0, **profile.choose(
        smoke=dict(rank=4, alpha=4.0, steps=60, batch=32, lr=1e-3, ema_decay=0.9),
        laptop=dict(rank=8, alpha=8.0, steps=300, batch=64, lr=1e-3, ema_decay=0.99),
        colab=dict(rank=8, alpha=8.0, steps=2_000, batch=128, lr=1e-4, ema_decay=0.999),
        full=dict(rank=8, alpha=8.0, steps=5_000, batch=256, lr=1e-4, ema_decay=0.999),
    )}


def finetune_lora(model: DiT, mu: torch.Tensor, logvar: torch.Tensor, labels: torch.Tensor, scale: float, *,
                  rank: int = 4, alpha: float | None = None, target: Target = ("qkv", "proj"), steps: int = 1_000,
                  batch: int = 32, lr: float = 1e-4, ema_decay: float = 0.999, p_uncond: float = 0.1,
                  schedule: str = "linear", num_steps: int = 1000, seed: int = 0,
                  progress: bool = True) -> TrainResult:
    """A LoRA-adapted copy of ``model`` fine-tuned on the latents (posteriors ``mu``, ``logvar`` (N, C, h, w),
    scaled by ``scale``) and ``labels`` (N,) of some images, e.g. those of one class, with ``LabelDropoutLoss``
    on the model's own schedule; ``model`` is left unchanged.

    ``add_lora`` wraps the ``target`` linears (the attention's qkv and output projections) with rank-``rank``
    updates and freezes the rest; only the A and B matrices train. ``result.ema`` (or ``result.model``) is the
    adapted model; ``lora.merge_lora`` folds the updates into plain linears.
    """
    tuned = add_lora(copy.deepcopy(model), target=target, rank=rank, alpha=alpha).to(mu.device)
    recipe = dict(schedule=schedule, num_steps=num_steps, steps=steps, batch=batch, lr=lr, warmup=0,
                  ema_decay=ema_decay, p_uncond=p_uncond, num_classes=model.config.num_classes)
    return train_latent(recipe, tuned, mu, logvar, labels, scale, seed=seed, progress=progress)


# Train-or-load functions by artifact base name, for scripts/train.py: every size a profile plots, the U-Net.
MODELS = {**{f"ch07_dit_{s.replace('/', '')}": partial(chapter7_dit, size=s)
             for s in dict.fromkeys(s for p in ("laptop", "colab", "full")
                                    for s in dit_sizes(PROFILES[p])[1])},
          "ch07_unet": chapter7_unet}
