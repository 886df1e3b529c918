"""Chapter 3's recipe: DDPM's U-Net on CIFAR-10 per profile, trained or loaded (what chapters 4 and 8 reuse).

    ddpm_recipe(profile)                  the chapter 3 U-Net's sizes and schedule
    unet_config(recipe)                   the recipe's named UNetConfig
    train_ddpm(recipe, images, ...)       trains one epsilon-prediction U-Net (DDPM's simple loss)
    chapter3_unet(profile, device)        load the saved chapter 3 U-Net, or train and save it
    sample_snapshots(snapshots, ...)      samples of the EMA snapshots kept while training (samples over training)
    snapshot_extras(result, recipe)       those samples as tensors kept with the artifact (meta["extras"])
    snapshot_fids(snapshots, ...)         FID of each EMA snapshot: the FID-over-training curve
    compare_recipe(profile, schedule, target)   a comparison U-Net: the recipe at fewer steps, another schedule/target
    comparison_unet(profile, schedule, target)  load that comparison U-Net, or train and save it
    MODELS                                name -> train-or-load function (scripts/train.py)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..course.profiles import Profile
from ..data.cifar import image_batches, to_uint8
from ..evaluation.fid import FIDReference, FIDResult, fid
from ..models.unet import UNet, UNetConfig
from ..process.diffusion import EpsilonLoss, PredictionLoss
from ..process.schedules import make_schedule
from ..samplers.ddim import ddim_sample, timesteps
from ..training.loop import TrainResult, train
from .common import _model_fields, _train_or_load, train_config


def ddpm_recipe(profile: Profile) -> dict[str, Any]:
    """The chapter 3 DDPM per profile: U-Net sizes (a named UNetConfig), schedule and training settings.
    ``full`` is DDPM's CIFAR-10 recipe (lr 2e-4, warm-up 5k, batch 128, EMA 0.9999) at fewer steps."""
    return profile.choose(
        # smoke: 150 steps (about 0.3 s each on 2 cores), what CI can afford beside eight other chapters
        smoke=dict(unet="tiny", schedule="linear", num_steps=1000, steps=150, batch=32, lr=1e-3, warmup=15,
                   ema_decay=0.98, train_images=2_000),
        # laptop: 1.1M parameters at about 63 images/s on 2 cores: 35k steps of 64 are about 10 CPU-hours
        # (45 epochs), trained in chunks by scripts/train.py; constant rate after warm-up, so a chunk's
        # schedule does not depend on when the run stops; EMA half-life about 1,400 steps
        laptop=dict(unet="laptop", schedule="linear", num_steps=1000, steps=35_000, batch=64, lr=3e-4,
                    warmup=1_000, ema_decay=0.9995, train_images=None),
        # colab: 10k steps (~26 epochs), so that chapter 3 fits a Colab session (issue 21; t4_minutes.json)
        colab=dict(unet="small", schedule="linear", num_steps=1000, steps=10_000, batch=128, lr=2e-4, warmup=1_000,
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


@torch.no_grad()
def sample_snapshots(snapshots: dict[int, dict[str, torch.Tensor]], config: UNetConfig, recipe: dict[str, Any],
                     num_images: int = 16, num_steps: int = 50, seed: int = 0,
                     device: torch.device | str = "cpu") -> dict[int, torch.Tensor]:
    """Samples of the model at each EMA snapshot (step -> weights, as ``TrainResult.snapshots`` and the
    checkpoints keep them): uint8 (num_images, 3, 32, 32) per step, all from the same noise, with DDIM
    (eta 0, trailing spacing, ``num_steps`` steps) on the recipe's schedule: "samples over training"."""
    schedule = make_schedule(recipe["schedule"], recipe["num_steps"])
    steps = timesteps(recipe["num_steps"], num_steps, "trailing")
    noise = torch.randn(num_images, 3, 32, 32, generator=torch.Generator().manual_seed(seed)).to(device)
    model = UNet(config).to(device).eval()
    out = {}
    for step, weights in sorted(snapshots.items()):
        model.load_state_dict(weights)  # float16 snapshots are cast to the model's float32
        out[step] = to_uint8(ddim_sample(model, schedule, noise, steps))
    return out


def snapshot_extras(result: TrainResult, recipe: dict[str, Any], num_images: int = 16,
                    num_steps: int = 50) -> dict[str, torch.Tensor]:
    """What the artifact keeps of a training's EMA snapshots, so that a chapter shows "samples over training"
    without the snapshots' weights: ``snapshot_steps`` (S,), ``snapshot_seconds`` (S,) training seconds up to
    each (NaN where not recorded) and ``snapshot_samples`` uint8 (S, num_images, 3, 32, 32) from
    ``sample_snapshots`` (same noise for every row). Empty when the run kept no snapshots."""
    if not result.snapshots:
        return {}
    device = next(result.ema.parameters()).device
    samples = sample_snapshots(result.snapshots, result.ema.config, recipe, num_images, num_steps, device=device)
    steps = sorted(samples)
    return {"snapshot_steps": torch.tensor(steps),
            "snapshot_seconds": torch.tensor([result.snapshot_seconds.get(s, float("nan")) for s in steps],
                                             dtype=torch.float64),
            "snapshot_samples": torch.stack([samples[s].cpu() for s in steps])}


def snapshot_fids(snapshots: dict[int, dict[str, torch.Tensor]], config: UNetConfig, recipe: dict[str, Any],
                  ref: FIDReference, *, num_samples: int = 500, num_steps: int = 50, batch: int = 250,
                  bootstrap: int = 20, device: torch.device | str = "cpu", features=None) -> dict[int, FIDResult]:
    """FID (with its bootstrap sd) of each EMA snapshot (step -> weights) against ``ref``:
    ``num_samples`` DDIM samples per snapshot (``sample_snapshots``; the same noise for every snapshot), so the
    points differ only by training. step -> FIDResult, in step order: the FID-over-training curve."""
    out = {}
    for step in sorted(snapshots):
        samples = torch.cat([sample_snapshots({step: snapshots[step]}, config, recipe, min(batch, num_samples - i),
                                              num_steps, seed=1000 + i, device=device)[step]
                             for i in range(0, num_samples, batch)])
        out[step] = fid(samples, ref.mu, ref.sigma, ref.name, ref_count=ref.num_images, bootstrap=bootstrap,
                        features=features)
    return out


def _build_unet(config: dict[str, Any]) -> UNet:
    return UNet(UNetConfig(**_model_fields(config)))


def chapter3_unet(profile: Profile, device: torch.device | str = "cpu", retrain: bool = False, *,
                  steps: int | None = None, checkpoint_path: str | Path | None = None,
                  stand_in: bool = True) -> tuple[UNet, dict]:
    """The chapter 3 EMA U-Net for ``profile`` (epsilon prediction, the recipe's schedule): loaded from its
    artifact, else trained with ``train_ddpm`` on CIFAR-10's training set and saved (what chapter 4 calls).
    ``steps`` and ``checkpoint_path`` as in ``chapter2_vae``; with a checkpoint, the run keeps EMA snapshots
    and the artifact their samples (``snapshot_extras``). ``stand_in=False`` (chapter 3 itself): train this
    profile's model rather than load another profile's published one."""
    return _train_or_load(f"ch03_unet-{profile.name}", _build_unet, profile, device, retrain, ddpm_recipe, train_ddpm,
                          steps, checkpoint_path, model_config_fn=unet_config, extras_fn=snapshot_extras,
                          stand_in=stand_in)


# the comparison's (schedule, prediction target) pairs, by artifact base name
VARIANTS = {"ch03_linear_eps": ("linear", "eps"), "ch03_cosine_eps": ("cosine", "eps"),
            "ch03_cosine_v": ("cosine", "v")}


def compare_recipe(profile: Profile, schedule: str, target: str) -> dict[str, Any]:
    """A U-Net of chapter 3's comparison: the profile's recipe (same U-Net, batch, lr, seed) trained for
    fewer steps with ``schedule`` ("linear" or "cosine") and prediction ``target`` ("eps" or "v"). Its EMA
    decay is 1 - 8 / steps, so that the EMA keeps e^-8 (0.03%) of the random initialisation at the end
    (the main recipe's decay would keep 37% of it after 2,000 steps: its samples would be noise)."""
    steps = profile.choose(smoke=50, laptop=2_000, colab=2_000, full=40_000)
    return {**ddpm_recipe(profile), "steps": steps, "ema_decay": 1 - 8 / steps, "schedule": schedule,
            "target": target}


def train_comparison(recipe: dict[str, Any], images: torch.Tensor, *, checkpoint_path=None) -> TrainResult:
    """Trains a comparison U-Net (``compare_recipe``) with ``PredictionLoss`` on its schedule and target."""
    loss = PredictionLoss(make_schedule(recipe["schedule"], recipe["num_steps"]), recipe["target"])
    return train_ddpm(recipe, images, loss_fn=loss, checkpoint_path=checkpoint_path)


def comparison_unet(profile: Profile, schedule: str, target: str, device: torch.device | str = "cpu",
                    retrain: bool = False, *, steps: int | None = None,
                    checkpoint_path: str | Path | None = None) -> tuple[UNet, dict]:
    """The comparison U-Net for (``schedule``, ``target``) in ``profile`` (``compare_recipe``; it predicts
    ``target``): loaded from its artifact ``ch03_<schedule>_<target>-<profile>``, else trained and saved."""
    name = f"ch03_{schedule}_{target}"
    if name not in VARIANTS:
        raise ValueError(f"no comparison U-Net for schedule {schedule!r} and target {target!r}; "
                         f"the comparison has {sorted(VARIANTS.values())}")
    return _train_or_load(f"{name}-{profile.name}", _build_unet, profile, device, retrain,
                          lambda p: compare_recipe(p, schedule, target), train_comparison, steps, checkpoint_path,
                          model_config_fn=unet_config, stand_in=False)


def _variant(name: str):
    return lambda profile, device="cpu", retrain=False, **kw: comparison_unet(profile, *VARIANTS[name], device,
                                                                              retrain, **kw)


# Train-or-load functions by artifact base name (artifact NAME-PROFILE), for scripts/train.py.
MODELS = {"ch03_unet": chapter3_unet, **{name: _variant(name) for name in VARIANTS}}
