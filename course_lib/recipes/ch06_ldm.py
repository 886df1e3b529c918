"""Chapter 6's recipes: the text-to-image latent diffusion model (LDM, Rombach et al. 2022) on the
chapter 2 VAE's latents of CIFAR-10, conditioned on synthetic captions (``course_lib.data.captions``) and
trained with caption dropout for classifier-free guidance (CFG, Ho & Salimans 2022).

    ldm_recipe(profile)                      sizes, schedule and training settings per profile
    ldm_config(recipe, latent_shape)         the LatentDenoiserConfig of a recipe
    train_ldm(recipe, mu, logvar, tokens, scale, ...)   trains one LatentDenoiser with the shared loop
    chapter6_ldm(profile, device)            load the saved model, or train and save it (and the VAE first)
    training_cost(model, loss_fn, batches)   steps/s and peak memory, for the latent-vs-pixel comparison
    sampling_seconds_per_image(sample, n)    wall time of a sampling call per image

Time convention: integer steps t in {0, ..., T-1}, t = 0 nearest the data (see process/schedules.py).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn

from ..training import distributed as dist
from ..course.artifacts import load_artifact, save_artifact
from ..data.captions import MAX_TOKENS, VOCAB, caption_images, tokenize
from ..data.cifar import load_cifar10
from ..course.device import autocast_dtype
from ..data.latents import encode_images, latent_batches, latent_scale
from ..models.ldm import LatentDenoiser, LatentDenoiserConfig
from ..models.text import TextEncoderConfig
from ..models.unet import UNetConfig
from ..course.profiles import Profile
from .ch02_vae import chapter2_vae
from .common import load_or_stand_in, train_config
from ..process.schedules import make_schedule
from ..process.text_guidance import CaptionDropoutLoss
from ..training.loop import TrainResult, train

TEXT_SIZES = {"tiny": TextEncoderConfig.tiny, "small": TextEncoderConfig.small, "base": TextEncoderConfig.base}
UNET_SIZES = {"tiny": UNetConfig.tiny, "laptop": UNetConfig.laptop, "small": UNetConfig.small,
              "ddpm_cifar10": UNetConfig.ddpm_cifar10}


def ldm_recipe(profile: Profile) -> dict[str, Any]:
    """The chapter 6 model per profile: named text-encoder and U-Net sizes (with overrides for 8x8 latents:
    levels at 8, 4 (and 2) px, attention at 4 (and 8) px and in the middle), DDPM's linear schedule, CFG's
    p_uncond = 0.1 (CFG Sec. 4), training settings. ``smoke`` (0.2M parameters, 600 steps) trains in about
    20 s on 2 CPU cores, enough for "white" and "bright" prompts to show in the samples."""
    common = dict(schedule="linear", num_steps=1000, p_uncond=0.1, max_tokens=MAX_TOKENS)
    return profile.choose(
        smoke=dict(text="tiny", text_overrides={}, unet="tiny",
                   unet_overrides=dict(channel_mult=(1, 2), attention_resolutions=(4,)),
                   steps=600, batch=32, lr=1e-3, warmup=30, ema_decay=0.99, train_images=2_000, **common),
        laptop=dict(text="tiny", text_overrides={}, unet="laptop",  # provisional: sized in issue 19
                    unet_overrides=dict(base_channels=64, channel_mult=(1, 2), attention_resolutions=(4,)),
                    steps=30_000, batch=64, lr=3e-4, warmup=1_000, ema_decay=0.9995, train_images=None,
                    **common),
        colab=dict(text="small", text_overrides={}, unet="small",
                   unet_overrides=dict(channel_mult=(1, 2, 2), attention_resolutions=(8, 4), head_dim=32),
                   steps=30_000, batch=128, lr=2e-4, warmup=1_000, ema_decay=0.9995, train_images=None, **common),
        full=dict(text="base", text_overrides={}, unet="ddpm_cifar10",
                  unet_overrides=dict(channel_mult=(1, 2, 2), attention_resolutions=(8, 4), head_dim=64),
                  steps=100_000, batch=128, lr=2e-4, warmup=5_000, ema_decay=0.9999, train_images=None, **common),
    )


def ldm_config(recipe: dict[str, Any], latent_shape: tuple[int, int, int]) -> LatentDenoiserConfig:
    """The recipe's LatentDenoiserConfig for latents of shape (C, h, w) (the VAE's ``latent_shape()``)."""
    C, h, w = latent_shape
    if h != w:
        raise ValueError(f"the U-Net takes square latents, got {h}x{w}")
    text = TEXT_SIZES[recipe["text"]](len(VOCAB), **{"max_len": recipe["max_tokens"], **recipe["text_overrides"]})
    unet = UNET_SIZES[recipe["unet"]](**{**recipe["unet_overrides"], "in_channels": C, "image_size": h,
                                         "context_dim": text.width})
    return LatentDenoiserConfig(text, unet)


def train_ldm(recipe: dict[str, Any], mu: torch.Tensor, logvar: torch.Tensor, tokens: torch.Tensor, scale: float, *,
              steps: int | None = None, model: LatentDenoiser | None = None, seed: int = 0, progress: bool = True,
              checkpoint_path=None) -> TrainResult:
    """Trains a LatentDenoiser (eps prediction, the recipe's schedule) on scaled latents kappa z, z ~ q(z | x)
    drawn afresh from the posteriors (mu, logvar) (N, C, h, w), paired with caption ``tokens`` (N, L), on
    mu's device, with ``CaptionDropoutLoss`` (CFG Alg. 1); continues ``model`` if given."""
    torch.manual_seed(seed)
    model = model if model is not None else LatentDenoiser(ldm_config(recipe, tuple(mu.shape[1:]))).to(mu.device)
    loss = CaptionDropoutLoss(make_schedule(recipe["schedule"], recipe["num_steps"]), p_uncond=recipe["p_uncond"])
    gen = torch.Generator(mu.device).manual_seed(seed)
    batches = latent_batches(mu, logvar, tokens.to(mu.device), recipe["batch"], scale, generator=gen)
    return train(model, loss, batches, train_config(recipe, steps, progress, checkpoint_path))


def _build_ldm(config: dict[str, Any]) -> LatentDenoiser:
    return LatentDenoiser(LatentDenoiserConfig.from_dict(config["model"]))


def latent_training_set(profile: Profile, train_images: int | None, device) -> dict[str, Any]:
    """Chapter 2's VAE, the autoencoder (``chapter2_vae``, trained first if missing), and CIFAR-10's training set
    (``train_images`` of it, None: all) encoded by it, on ``device``: the posteriors ``mu``, ``logvar``
    (N, C, h, w), the ``labels`` (N,), the latent scale kappa measured on them (LDM App. G), the autoencoder
    (``vae_model``), its record (``vae_meta``), name and SHA-256 (``vae``, ``vae_sha256``) and the data's
    ``source`` (an ImageData). The latent models of chapters 6 and 7 train on this."""
    vae, vae_meta = chapter2_vae(profile, device)
    with dist.main_first():  # rank 0 decodes CIFAR-10 into the cache; the other ranks then read it
        data = load_cifar10("train", subset=train_images)
    mu, logvar = encode_images(vae, data.images.to(device))  # each (N, C, h, w)
    scale = latent_scale(mu, logvar, torch.Generator(mu.device).manual_seed(0))  # LDM App. G
    return dict(mu=mu, logvar=logvar, labels=data.labels.to(device), scale=scale, vae_model=vae, vae_meta=vae_meta,
                vae=vae_meta["name"], vae_sha256=vae_meta["sha256"], data=data.source_id, source=data)


def check_autoencoder(meta: dict[str, Any], vae_meta: dict[str, Any]) -> None:
    """Raises ValueError unless the latent model whose record is ``meta`` was trained on the latents of the
    autoencoder whose record is ``vae_meta`` (the same SHA-256): another autoencoder decodes its samples
    into noise. Happens when chapter 2's autoencoder was trained again after the latent model."""
    want = meta["config"].get("vae_sha256")
    if want != vae_meta["sha256"]:
        raise ValueError(f"{meta['name']} was trained on the latents of {meta['config'].get('vae')} (SHA-256 "
                         f"{str(want)[:12]}...), not on those of the {vae_meta['name']} in the course cache "
                         f"({vae_meta['sha256'][:12]}...): train it again (scripts/train.py with --retrain, or "
                         f"retrain=True), or put that autoencoder back.")


def _training_data(profile: Profile, recipe: dict[str, Any], device) -> dict[str, Any]:
    """``latent_training_set`` with the captions' tokens (N, L) on ``device``."""
    d = latent_training_set(profile, recipe["train_images"], device)
    data = d["source"]
    d["tokens"] = tokenize(caption_images(data.images, data.labels), recipe["max_tokens"]).to(device)  # (N, L)
    return d


def chapter6_ldm(profile: Profile, device: torch.device | str = "cpu", retrain: bool = False, *,
                 steps: int | None = None, checkpoint_path: str | Path | None = None,
                 stand_in: bool = True) -> tuple[LatentDenoiser, dict]:
    """The chapter 6 EMA LatentDenoiser for ``profile``: loaded from artifact ``ch06_ldm-PROFILE``, else
    trained with ``train_ldm`` on the chapter 2 autoencoder's latents of CIFAR-10's training set and saved with its
    loss history. ``meta["config"]`` holds the ``latent_scale`` to sample with (the diffusion model's latents
    are kappa z) and the ``vae`` artifact it belongs to; ``steps`` replaces the recipe's (tests);
    ``checkpoint_path``: resume from it and save to it; ``stand_in=False`` (chapter 6 itself): train this
    profile's model rather than load another profile's published one."""
    name = f"ch06_ldm-{profile.name}"
    if not retrain and (saved := load_or_stand_in(name, _build_ldm, profile, device,
                                                  f"Training it now with train_ldm ({profile.name} recipe).",
                                                  recipe_fn=ldm_recipe, stand_in=stand_in)):
        return saved  # in colab, the published laptop model when no colab one exists (common.STAND_IN)
    recipe = ldm_recipe(profile) if steps is None else {**ldm_recipe(profile), "steps": steps}
    d = _training_data(profile, recipe, device)
    result = train_ldm(recipe, d["mu"], d["logvar"], d["tokens"], d["scale"], checkpoint_path=checkpoint_path)
    return save_latent_model(name, result, result.ema.config.to_dict(), recipe, d, profile,
                             "course_lib.recipes.ch06_ldm.train_ldm", _build_ldm, device)


def save_latent_model(name: str, result: TrainResult, model_config: dict[str, Any], recipe: dict[str, Any],
                      d: dict[str, Any], profile: Profile, produced_by: str, build: Callable, device):
    """Saves ``result.ema``, trained on the latents ``d`` (``latent_training_set``), as artifact ``name`` with
    the latent scale and the autoencoder's name and SHA-256 in its config and its loss history (rank 0 only),
    then loads it back on every rank: the end of a latent model's train-or-load (chapters 6 and 7)."""
    if dist.is_main():
        config = {"model": model_config, "recipe": recipe, "data": d["data"],
                  "latent_scale": d["scale"], "vae": d["vae"], "vae_sha256": d["vae_sha256"],
                  "processes": dist.world_size()}
        save_artifact(name, result.ema, config, profile=profile.name, produced_by=produced_by,
                      seconds=result.total_seconds, history=result.history, metrics={"latent_scale": d["scale"]})
    dist.barrier()  # the other ranks wait for the files
    return load_artifact(name, build, map_location=device)


# ---- what training and sampling cost (chapter 6 compares latent and pixel diffusion) ---------------

@dataclass
class TrainingCost:
    steps_per_second: float
    peak_memory_mib: float | None  # torch.cuda.max_memory_allocated; None where not measured (CPU, MPS)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def training_cost(model: nn.Module, loss_fn: Callable[[nn.Module, Any], torch.Tensor], batches: Iterator,
                  steps: int = 10, warmup: int = 2, lr: float = 1e-4) -> TrainingCost:
    """Optimizer steps per second over ``steps`` steps (after ``warmup`` untimed ones) of a copy of
    ``model`` (the model itself is not changed), with AdamW and the training loop's mixed precision;
    on CUDA also the peak memory allocated while doing so."""
    if steps < 1 or warmup < 0:
        raise ValueError(f"need steps >= 1 and warmup >= 0, got {steps} and {warmup}")
    model = copy.deepcopy(model).train().requires_grad_(True)  # an EMA copy comes with its weights frozen
    device = next(model.parameters()).device
    amp = autocast_dtype(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for i in range(warmup + steps):
        if i == warmup:
            _sync(device)
            t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            loss = loss_fn(model, next(batches))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    _sync(device)
    seconds = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return TrainingCost(steps / seconds, peak)


def sampling_seconds_per_image(sample: Callable[[], torch.Tensor], num_images: int) -> float:
    """Wall time of ``sample()`` (a call that generates ``num_images`` images and returns them) per image,
    waiting for the GPU to finish where the result lies on one."""
    if num_images < 1:
        raise ValueError(f"num_images must be >= 1, got {num_images}")
    t0 = time.perf_counter()
    out = sample()
    if isinstance(out, torch.Tensor):
        _sync(out.device)
    return (time.perf_counter() - t0) / num_images


# Train-or-load functions by artifact base name (artifact NAME-PROFILE), for scripts/train.py.
MODELS = {"ch06_ldm": chapter6_ldm}
