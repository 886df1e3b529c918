"""Chapter 8's recipes: flow matching (rectified flow) models on the swiss roll and on CIFAR-10 pixels, trained
or loaded like the other chapters' models, and reflow (a 2-rectified flow trained on a flow's own couplings).
In ``smoke`` and ``laptop`` the CIFAR-10 flow starts from chapter 3's trained U-Net (``init``: the same network
learns the velocity instead of the noise), a fine-tune of hours instead of chapter 3's 12.6 CPU-hours.

    fm_recipe(profile, dataset)           model sizes and training settings ("cifar10" or "swiss_roll")
    build_fm_model(recipe)                chapter 1's MLP (swiss roll) or chapter 3's U-Net (CIFAR-10)
    train_fm(recipe, data, matcher, ...)  trains a velocity model with a flow matcher in the shared loop
    chapter8_fm(profile, device)          load the saved CIFAR-10 flow (artifact ch08_fm-PROFILE), or train it
    reflow_recipe(profile, dataset)       how many couplings, on which grid, and how long to train on them
    train_reflow(recipe, x0, eps, ...)    trains the next rectified flow on fixed pairs (RF Alg. 1)
    chapter8_reflow(profile, device)      the 2-rectified CIFAR-10 flow (artifact ch08_reflow-PROFILE)
    MODELS                       name -> train-or-load function (for scripts/train.py)

Time convention: s in [0, 1], s = 0 data, s = 1 noise; the models see 1000 s (flow_matching.TIME_SCALE).
``full`` follows torchcfm's CIFAR-10 recipe (Tong et al. 2024: lr 2e-4, warm-up 5k, batch 128, gradient
clipping at 1, EMA 0.9999; DDPM's, too) at 100k rather than 400k steps, on DDPM's U-Net.
``smoke`` measured with one thread on a busy 2-core CPU: swiss roll, 1,000 steps, about 4 s (OT-CFM about 12 s,
its exact assignment costing about 6 ms a batch), reflow about 4 s; CIFAR-10, the tiny U-Net's steps at batch 32
about 0.15 s each (100, fine-tuning chapter 3's smoke U-Net as ``laptop`` does), its reflow drawing 128
couplings and training 40 steps.
"""

from __future__ import annotations

import copy
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import torch

from ..training import distributed as dist
from ..course.artifacts import load_artifact, save_artifact
from ..course.device import sampling_autocast
from ..data.cifar import image_batches
from ..data.toy import random_batches
from ..process.flow_matching import ConditionalFlowMatcher, PairedFlowMatchingLoss
from ..samplers.flow import flow_euler_sample, reflow_pairs
from ..models.mlp import MLPConfig, MLPDenoiser
from ..models.unet import UNet
from ..course.profiles import Profile
from .ch03_ddpm import _build_unet, unet_config
from .ch05_cfg import init_from_chapter3
from .common import _train_or_load, load_if_saved, train_config
from ..training.loop import TrainResult, train

DATASETS = ("cifar10", "swiss_roll")


def fm_recipe(profile: Profile, dataset: str = "cifar10") -> dict[str, Any]:
    """The chapter 8 flow model per profile. CIFAR-10: chapter 3's U-Net sizes and settings (``ddpm_recipe``);
    swiss roll: chapter 1's MLP, and ``ot_batch``, the batch of its OT-CFM run (the chapter passes it as
    ``batch``). The loss is the linear path's (rectified flow) unless ``train_fm`` gets another."""
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    if dataset == "swiss_roll":
        return profile.choose(
            smoke=dict(mlp=dict(hidden=64, num_blocks=3), steps=1_000, batch=256, ot_batch=256, lr=2e-3,
                       warmup=100, ema_decay=0.995, train_points=20_000),
            # laptop: chapter 1's laptop size and run (10,000 steps of 512: three such models train on the page);
            # OT-CFM's exact assignment costs ~batch^3 on the CPU, ~0.35 s a step at 1,024: 256, as colab
            laptop=dict(mlp=dict(hidden=128, num_blocks=4), steps=10_000, batch=512, ot_batch=256, lr=1e-3,
                        warmup=500, ema_decay=0.999, train_points=100_000),
            # colab: OT-CFM's exact assignment (SciPy, on the CPU) costs ~batch^3, ~0.35 s a step at 1,024
            colab=dict(mlp=dict(hidden=128, num_blocks=4), steps=20_000, batch=1024, ot_batch=256, lr=1e-3,
                       warmup=500, ema_decay=0.999, train_points=100_000),
            full=dict(mlp=dict(hidden=128, num_blocks=4), steps=20_000, batch=1024, ot_batch=1024, lr=1e-3,
                      warmup=500, ema_decay=0.999, train_points=100_000),
        )
    init = f"ch03_unet-{profile.name}"  # smoke and laptop fine-tune chapter 3's U-Net of their profile
    return {"init": None, **profile.choose(
        smoke=dict(unet="tiny", steps=100, batch=32, lr=1e-3, warmup=10, ema_decay=0.98, train_images=2_000,
                   init=init),
        laptop=dict(unet="laptop", steps=5_000, batch=64, lr=3e-4, warmup=500, ema_decay=0.999, train_images=None,
                    init=init),
        colab=dict(unet="small", steps=10_000, batch=128, lr=2e-4, warmup=1_000, ema_decay=0.9995, train_images=None),
        full=dict(unet="ddpm_cifar10", steps=100_000, batch=128, lr=2e-4, warmup=5_000, ema_decay=0.9999,
                  train_images=None),
    )}


def build_fm_model(recipe: dict[str, Any]) -> torch.nn.Module:
    """An untrained velocity model for the recipe: ``MLPDenoiser`` if it names ``mlp`` sizes, else the U-Net."""
    if "mlp" in recipe:
        return MLPDenoiser(MLPConfig(**recipe["mlp"]))
    return UNet(unet_config(recipe))


def train_fm(recipe: dict[str, Any], data: torch.Tensor, matcher: ConditionalFlowMatcher | None = None, *,
             steps: int | None = None, model: torch.nn.Module | None = None, seed: int = 0, progress: bool = True,
             checkpoint_path=None) -> TrainResult:
    """Trains a velocity model v(x_s, 1000 s) with ``matcher``'s loss (default: the linear path, rectified flow)
    on ``data`` where it lies: uint8 images (N, 3, 32, 32), drawn with flips as in chapter 3, or float points
    (N, D), e.g. the swiss roll. Continues ``model`` if given, else starts from the recipe's ``init`` (chapter
    3's U-Net, ``init_from_chapter3``) or from scratch. ``result.ema`` is the model to sample."""
    torch.manual_seed(seed)
    if model is None:
        model = build_fm_model(recipe).to(data.device)
        if recipe.get("init"):  # a resumed run then replaces these weights with its checkpoint's
            init_from_chapter3(model, recipe["init"])
    gen = torch.Generator(data.device).manual_seed(seed)
    if data.dtype == torch.uint8:
        batches = image_batches(data, recipe["batch"], generator=gen)
    else:
        batches = random_batches(data, recipe["batch"], generator=gen)
    return train(model, matcher or ConditionalFlowMatcher(), batches, train_config(recipe, steps, progress,
                                                                                    checkpoint_path))


def chapter8_fm(profile: Profile, device: torch.device | str = "cpu", retrain: bool = False, *,
                steps: int | None = None, checkpoint_path: str | Path | None = None) -> tuple[UNet, dict]:
    """The chapter 8 EMA U-Net velocity model (rectified flow on CIFAR-10 pixels) for ``profile``: loaded from its
    artifact, else trained with ``train_fm`` on CIFAR-10's training set and saved. ``steps`` replaces the recipe's
    (tests); ``checkpoint_path``: resume from it and save to it."""
    return _train_or_load(f"ch08_fm-{profile.name}", _build_unet, profile, device, retrain, fm_recipe, train_fm,
                          steps, checkpoint_path, model_config_fn=lambda r: build_fm_model(r).config)


# ---- reflow: the 2-rectified flow (Liu et al. 2023, Sec. 2.2 and Alg. 1) ---------------------------

def reflow_recipe(profile: Profile, dataset: str = "cifar10") -> dict[str, Any]:
    """Reflow per profile: ``pairs`` couplings drawn with ``sample_steps`` Euler steps of the trained flow, then
    the flow's recipe (``fm_recipe``) trained on them, starting from the trained flow's weights as the RF paper
    does; ``steps`` and ``lr`` replace the flow recipe's."""
    if dataset == "swiss_roll":
        extra = profile.choose(smoke=dict(pairs=10_000, sample_steps=50, steps=1_000, lr=1e-3),
                               laptop=dict(pairs=50_000, sample_steps=50, steps=5_000, lr=5e-4),
                               colab=dict(pairs=100_000, sample_steps=100, steps=10_000, lr=5e-4),
                               full=dict(pairs=100_000, sample_steps=100, steps=10_000, lr=5e-4))
    else:
        extra = profile.choose(smoke=dict(pairs=128, sample_steps=8, steps=40, lr=1e-3),
                               laptop=dict(pairs=20_000, sample_steps=20, steps=3_000, lr=1e-4),
                               colab=dict(pairs=5_000, sample_steps=50, steps=5_000, lr=1e-4),
                               full=dict(pairs=100_000, sample_steps=100, steps=50_000, lr=1e-4))
    return {**fm_recipe(profile, dataset), **extra}


def pair_batches(x0: torch.Tensor, eps: torch.Tensor, batch_size: int, generator: torch.Generator | None = None):
    """Endless random batches (x0[i], eps[i]) of fixed couplings, drawn where they lie (with replacement)."""
    if x0.shape != eps.shape or batch_size < 1:
        raise ValueError(f"x0 and eps must share a shape (got {tuple(x0.shape)}, {tuple(eps.shape)}); batch_size >= 1")
    while True:
        idx = torch.randint(0, x0.shape[0], (batch_size,), device=x0.device, generator=generator)
        yield x0[idx], eps[idx]


def train_reflow(recipe: dict[str, Any], x0: torch.Tensor, eps: torch.Tensor, *, model: torch.nn.Module | None = None,
                 steps: int | None = None, seed: int = 0, progress: bool = True, checkpoint_path=None) -> TrainResult:
    """Trains the next rectified flow on fixed couplings (x0, eps), both (M, ...) float on the training device,
    e.g. from ``reflow_pairs``, with ``PairedFlowMatchingLoss`` (RF Alg. 1). Starts from a copy of ``model`` (the
    previous flow; left unchanged) if given, else from scratch."""
    torch.manual_seed(seed)
    if model is not None:  # a trainable copy (an EMA model comes frozen)
        model = copy.deepcopy(model).requires_grad_(True)
    else:
        model = build_fm_model(recipe).to(x0.device)
    gen = torch.Generator(x0.device).manual_seed(seed)
    return train(model, PairedFlowMatchingLoss(), pair_batches(x0, eps, recipe["batch"], gen),
                 train_config(recipe, steps, progress, checkpoint_path))


def make_reflow_pairs(model: torch.nn.Module, recipe: dict[str, Any], shape: tuple[int, ...], device, seed: int = 0,
                      batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """``recipe["pairs"]`` couplings (x0, eps) of ``model``: noise of ``shape`` per sample, sampled by Euler on
    the uniform grid of ``recipe["sample_steps"]`` steps (``reflow_pairs``), the network under
    ``sampling_autocast`` (fp16/bf16 on a GPU, float32 on a CPU; the pairs are float32 either way)."""
    gen = torch.Generator(device).manual_seed(seed)
    noise = torch.randn(recipe["pairs"], *shape, generator=gen, device=device)
    model.eval()
    with sampling_autocast(device):
        return reflow_pairs(model, noise, torch.linspace(1, 0, recipe["sample_steps"] + 1), flow_euler_sample,
                            batch_size)


def chapter8_reflow(profile: Profile, device: torch.device | str = "cpu", retrain: bool = False, *,
                    steps: int | None = None, checkpoint_path: str | Path | None = None) -> tuple[UNet, dict]:
    """The 2-rectified CIFAR-10 flow for ``profile``: loaded from artifact ch08_reflow-PROFILE, else made from the
    chapter 8 flow (``chapter8_fm``, itself loaded or trained): couplings from its ODE, ``train_reflow`` on them,
    saved. ``steps`` and ``checkpoint_path`` as in ``chapter8_fm``."""
    name = f"ch08_reflow-{profile.name}"
    if not retrain and (saved := load_if_saved(
            name, _build_unet, device, f"Making it now from ch08_fm-{profile.name} with train_reflow ({profile.name} recipe).")):
        return saved
    recipe = reflow_recipe(profile)
    recipe = {**recipe, "steps": steps} if steps is not None else recipe
    flow, _ = chapter8_fm(profile, device)
    x0, eps = make_reflow_pairs(flow, recipe, (3, 32, 32), device)
    result = train_reflow(recipe, x0, eps, model=flow, checkpoint_path=checkpoint_path)
    if dist.is_main():
        config = {"model": asdict(result.ema.config), "recipe": recipe, "from": f"ch08_fm-{profile.name}",
                  "processes": dist.world_size()}
        save_artifact(name, result.ema, config, profile=profile.name, produced_by=f"{__name__}.train_reflow",
                      seconds=result.seconds)
    dist.barrier()
    return load_artifact(name, _build_unet, map_location=device)


# Train-or-load functions by artifact base name (their artifact is NAME-PROFILE), for scripts/train.py.
MODELS: dict[str, Callable[..., tuple[torch.nn.Module, dict]]] = {
    "ch08_fm": chapter8_fm,
    "ch08_reflow": chapter8_reflow,
}
