"""Chapter 7's recipes: class-conditional DiTs on CIFAR-10 pixels, trained or loaded like the other
chapters' models (``recipes._train_or_load``), and LoRA fine-tuning of a trained DiT.

    dit_recipe(profile, size)             a DiT size's model and training settings at a profile
    dit_config(recipe, **overrides)       its DiTConfig
    train_dit(recipe, images, labels, ...)      trains one with label dropout (classifier-free guidance)
    chapter7_dit(profile, device, size=...)     load the saved DiT of that size, or train and save it
    lora_recipe(profile)                  LoRA fine-tuning settings, as keywords of ``finetune_lora``
    finetune_lora(model, images, labels, ...)   a LoRA-adapted copy of a model, fine-tuned on images
    MODELS                       name -> train-or-load function (for scripts/train.py)

Time convention: integer steps t in {0, ..., T-1}, t = 0 nearest the data (see process/schedules.py).

DiT's ImageNet recipe (Peebles & Xie 2023, Sec. 4): AdamW at a constant 1e-4, no weight decay, no
warm-up, batch 256, EMA decay 0.9999, 400k steps for its ablations; the linear beta schedule with
T = 1000 (ADM's). ``full`` is that recipe at fewer steps; ``colab`` halves the batch; both keep the
shared loop's gradient clipping at norm 1 (DDPM's; DiT does not clip). On 32 x 32 x 3 pixels a patch of
2 or 4 gives 256 or 64 tokens, the token grids of DiT's 32 x 32 x 4 ImageNet-256 latents, so the
Gflops are the paper's (``course_lib.evaluation.flops``): S/2 6.05, S/4 1.41, B/2 23.0, B/4 5.56.
``smoke`` trains DiT-tiny at the size's patch size for the same 200 steps (as DiT compares its configurations at
equal steps; on 2 idle CPU cores about 4 s at patch 4 and 15 s at patch 2).
"""

from __future__ import annotations

import copy
from functools import partial
from pathlib import Path
from typing import Any

import torch

from ..process.guidance import LabelDropoutLoss
from ..models.lora import Target, add_lora
from ..models.dit import DiT, DiTConfig
from ..course.profiles import Profile
from .common import _model_fields, _train_or_load
from .ch03_ddpm import train_ddpm
from ..process.schedules import make_schedule
from ..training.loop import TrainResult

SIZES = ("S/2", "S/4", "B/2", "B/4", "tiny/2", "tiny/4")


def dit_recipe(profile: Profile, size: str = "S/2") -> dict[str, Any]:
    """DiT ``size`` ("S/2", "S/4", "B/2", "B/4"; smoke trains DiT-tiny at its patch size) at ``profile``:
    class-conditional on CIFAR-10's 10 classes, labels dropped with probability 0.1 (CFG Alg. 1)."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    patch = int(size.split("/")[1])
    common = dict(size=size, schedule="linear", num_steps=1000, warmup=0, num_classes=10, p_uncond=0.1)
    return {**common, **profile.choose(
        smoke=dict(model=f"tiny/{patch}", steps=200, batch=32, lr=1e-3, warmup=10,
                   ema_decay=0.99, train_images=2_000),
        laptop=dict(model=size, steps=20_000, batch=64, lr=1e-4, ema_decay=0.9995,
                    train_images=None),  # provisional: sized in issue 19 (chapter 7)
        colab=dict(model=size, steps=18_000, batch=128, lr=1e-4, ema_decay=0.9995, train_images=None),
        full=dict(model=size, steps=100_000, batch=256, lr=1e-4, ema_decay=0.9999, train_images=None),
    )}


def dit_config(recipe: dict[str, Any], **overrides) -> DiTConfig:
    """The recipe's DiTConfig on CIFAR-10 pixels: 32 x 32 x 3 inputs, 10 classes (plus the null class)."""
    fields = dict(input_size=32, in_channels=3, num_classes=recipe["num_classes"])
    return DiTConfig.named(recipe["model"], **{**fields, **overrides})


def train_dit(recipe: dict[str, Any], images: torch.Tensor, labels: torch.Tensor, *, steps: int | None = None,
              model: DiT | None = None, seed: int = 0, progress: bool = True, checkpoint_path=None) -> TrainResult:
    """Trains a class-conditional DiT (eps prediction, the recipe's schedule) on uint8 ``images`` (N, 3, 32, 32)
    and ``labels`` (N,) with ``LabelDropoutLoss`` (CFG Alg. 1) in the shared loop (``recipes.ch03_ddpm.train_ddpm``),
    continuing ``model`` if given. ``result.ema`` is the model to use."""
    torch.manual_seed(seed)
    if model is None:
        model = DiT(dit_config(recipe)).to(images.device)
    loss = LabelDropoutLoss(make_schedule(recipe["schedule"], recipe["num_steps"]), p_uncond=recipe["p_uncond"],
                            num_classes=recipe["num_classes"])
    return train_ddpm(recipe, images, loss_fn=loss, steps=steps, model=model, seed=seed, progress=progress,
                      checkpoint_path=checkpoint_path, labels=labels)


def _build_dit(config: dict[str, Any]) -> DiT:
    return DiT(DiTConfig(**_model_fields(config)))


def chapter7_dit(profile: Profile, device: torch.device | str = "cpu", retrain: bool = False, *, size: str = "S/2",
                 steps: int | None = None, checkpoint_path: str | Path | None = None) -> tuple[DiT, dict]:
    """The chapter 7 class-conditional EMA DiT of ``size`` for ``profile`` (artifact ``ch07_dit_S2-colab`` for
    S/2 at colab): loaded from its artifact, else trained with ``train_dit`` on CIFAR-10's training set and
    saved. ``steps`` replaces the recipe's (tests); ``checkpoint_path``: resume from it and save to it."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    name = f"ch07_dit_{size.replace('/', '')}-{profile.name}"
    return _train_or_load(name, _build_dit, profile, device, retrain, lambda p: dit_recipe(p, size), train_dit,
                          steps, checkpoint_path, labels=True, model_config_fn=dit_config)


# ---- LoRA fine-tuning (Hu et al. 2022) -------------------------------------------------------------

def lora_recipe(profile: Profile) -> dict[str, Any]:
    """Keywords of ``finetune_lora`` per profile: rank and alpha (alpha = r, scale 1), steps, batch, lr, EMA."""
    return profile.choose(
        smoke=dict(rank=4, alpha=4.0, steps=60, batch=32, lr=1e-3, ema_decay=0.9),
        laptop=dict(rank=8, alpha=8.0, steps=1_000, batch=64, lr=2e-4, ema_decay=0.999),  # provisional
        colab=dict(rank=8, alpha=8.0, steps=2_000, batch=128, lr=1e-4, ema_decay=0.999),
        full=dict(rank=8, alpha=8.0, steps=5_000, batch=256, lr=1e-4, ema_decay=0.999),
    )


def finetune_lora(model: DiT, images: torch.Tensor, labels: torch.Tensor, *, rank: int = 4,
                  alpha: float | None = None, target: Target = ("qkv", "proj"), steps: int = 1_000,
                  batch: int = 32, lr: float = 1e-4, ema_decay: float = 0.999, p_uncond: float = 0.1,
                  schedule: str = "linear", num_steps: int = 1000, seed: int = 0, progress: bool = True) -> TrainResult:
    """A LoRA-adapted copy of ``model`` fine-tuned on uint8 ``images`` (N, 3, H, W) and ``labels`` (N,), e.g. the
    images of one class, with ``LabelDropoutLoss`` on the model's own schedule; ``model`` is left unchanged.

    ``add_lora`` wraps the ``target`` linears (the attention's qkv and output projections) with rank-``rank``
    updates and freezes the rest; only the A and B matrices train. ``result.ema`` (or ``result.model``) is the
    adapted model; ``lora.merge_lora`` folds the updates into plain linears.
    """
    tuned = add_lora(copy.deepcopy(model), target=target, rank=rank, alpha=alpha).to(images.device)
    recipe = dict(schedule=schedule, num_steps=num_steps, steps=steps, batch=batch, lr=lr, warmup=0,
                  ema_decay=ema_decay)
    loss = LabelDropoutLoss(make_schedule(schedule, num_steps), p_uncond=p_uncond)
    return train_ddpm(recipe, images, loss_fn=loss, model=tuned, seed=seed, progress=progress, labels=labels)


# Train-or-load functions by artifact base name, for scripts/train.py.
MODELS = {f"ch07_dit_{s.replace('/', '')}": partial(chapter7_dit, size=s) for s in SIZES[:4]}
