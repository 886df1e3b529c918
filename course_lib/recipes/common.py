"""What every chapter's recipe module shares: the training loop's settings from a recipe, and
train-or-load (load the artifact, else train with the chapter's function on CIFAR-10 and save it).

Under torchrun (see course_lib.training.loop.distributed) every rank trains; rank 0 alone writes the artifact.
"""

from __future__ import annotations
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable
from torch import nn
from ..training import distributed as dist
from ..course.artifacts import ArtifactMissingError, load_artifact, save_artifact
from ..course.registry import resolve_artifact
from ..data.cifar import load_cifar10
from ..course.profiles import Profile
from ..training.loop import TrainConfig


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
