"""What every chapter's recipe module shares: the training loop's settings from a recipe, and
train-or-load (load the artifact, else train with the chapter's function on CIFAR-10 and save it).

On Colab each notebook is a fresh machine: a later chapter that needs an earlier chapter's model in a
profile for which none is published (``STAND_IN``: colab) loads the published ``laptop`` one instead of
training it again, and says so; the chapter that trains the model passes ``retrain=True`` or trains it itself.

Under torchrun (see course_lib.training.distributed) every rank trains; rank 0 alone writes the artifact.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from torch import nn

from ..course.artifacts import ArtifactError, ArtifactMissingError, load_artifact, save_artifact
from ..course.profiles import PROFILES, Profile
from ..course.registry import ArtifactDownloadError, resolve_artifact
from ..data.cifar import load_cifar10
from ..training import distributed as dist
from ..training.loop import TrainConfig


# profile -> the profile whose published model stands in when this profile's own is neither cached nor published
STAND_IN = {"colab": "laptop"}


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


def load_if_saved(name: str, build, device, then: str, *, profile: str | None = None, model_config: Any = None):
    """Artifact ``name`` from the local cache or the registry's download, or None after saying that it is
    missing and what happens ``then`` (e.g. "Training it now with train_ddpm (smoke recipe)."); with ``then``
    None a missing artifact raises ArtifactMissingError (ArtifactDownloadError) for the caller to report.
    With ``profile`` and ``model_config`` (the recipe's model config dataclass), an artifact saved under another
    profile or for another model is refused (ArtifactError), never used silently."""
    try:
        model, meta = resolve_artifact(name, build, map_location=device)
    except ArtifactMissingError as err:  # said by name: the page never shows a path of the machine
        if then is None:  # the caller says what is missing and what happens next
            raise
        print(f"{_missing_text(name, err)}\n{then}")
        return None
    check_matches_recipe(name, meta, profile, model_config)
    return model, meta


def load_or_stand_in(name: str, build, profile: Profile, device, then: str, *, recipe_fn,
                     model_config_fn: Callable[[dict], Any] | None = None, stand_in: bool = True):
    """Artifact ``name`` (cached, published, or downloaded), else (if ``stand_in``) the ``STAND_IN`` profile's
    published one (saying so), else None after saying what is missing and what happens ``then``."""
    expected = model_config_fn(recipe_fn(profile)) if model_config_fn else None
    try:
        return load_if_saved(name, build, device, None, profile=profile.name, model_config=expected)
    except ArtifactMissingError as err:  # try a stand-in, else say so
        missing = _missing_text(name, err)
    if stand_in and (other := _published_stand_in(name, build, profile, device, recipe_fn, model_config_fn)):
        return other
    print(f"{missing}\n{then}")
    return None


def _missing_text(name: str, err: ArtifactMissingError) -> str:
    """What to print about a missing artifact: a failed download's message says where to put the file by hand."""
    if isinstance(err, ArtifactDownloadError):  # published, but not reachable
        return str(err)
    return f"artifact {name!r} is not in the course cache (artifacts/) and no copy of it is published."


def _published_stand_in(name: str, build, profile: Profile, device, recipe_fn, model_config_fn):
    """(model, meta) of the ``STAND_IN`` profile's artifact for this model when it is cached or published, after
    saying so; None when the profile has no stand-in or that artifact is missing too."""
    other = STAND_IN.get(profile.name)
    if other is None:
        return None
    base, other_name = name.rsplit("-", 1)[0], f"{name.rsplit('-', 1)[0]}-{other}"
    try:
        model, meta = resolve_artifact(other_name, build, map_location=device)
    except ArtifactDownloadError as err:
        print(err)
        return None
    except ArtifactMissingError:
        return None
    check_matches_recipe(other_name, meta, other, model_config_fn(recipe_fn(PROFILES[other])) if model_config_fn
                         else None)
    hours = f", {meta['train_seconds'] / 3600:.1f} h of training" if meta.get("train_seconds") else ""
    print(f"No {profile.name} {base} is in the course cache or published yet: using the published {other} one "
          f"instead ({meta.get('hardware', 'hardware not recorded')}{hours}), so this chapter does not train it "
          f"again. It has the {other} recipe's sizes, not the {profile.name} recipe's; to use a {profile.name} model "
          f"of your own, run the chapter that trains it first (or scripts/train.py {base} --profile {profile.name}).")
    return model, meta


def _as_json(value: Any) -> Any:
    """A config as JSON stores it (tuples become lists), so a saved config compares equal to a fresh one."""
    return json.loads(json.dumps(value))


def check_matches_recipe(name: str, meta: dict[str, Any], profile: str | None, model_config: Any = None) -> None:
    """Refuses artifact ``name`` when its recorded profile, or its model config (a dataclass of the recipe's
    model, compared field by field with the saved one, defaults filled in), differs from the recipe's."""
    if profile is not None and meta.get("profile") != profile:
        raise ArtifactError(f"artifact {name!r} was trained in the {meta.get('profile')!r} profile, not in "
                            f"{profile!r}: it is another model than this profile's recipe. Delete it (or retrain "
                            f"with retrain=True / scripts/train.py --retrain).")
    if model_config is None:
        return
    wanted = _as_json(asdict(model_config))
    try:
        have = _as_json(asdict(type(model_config)(**_model_fields(meta["config"]))))
    except (TypeError, KeyError) as err:  # unknown or missing fields
        raise ArtifactError(f"artifact {name!r} records a model config that is not a {type(model_config).__name__} "
                            f"({err}). Retrain it (retrain=True or scripts/train.py --retrain).") from None
    if have != wanted:
        diff = {k: (have.get(k), v) for k, v in wanted.items() if have.get(k) != v}
        raise ArtifactError(f"artifact {name!r} holds another model than the recipe's: (saved, recipe) differ in "
                            f"{diff}. The recipe changed since it was trained: retrain it (retrain=True or "
                            f"scripts/train.py --retrain), or delete the artifact.")


def _model_fields(config: dict[str, Any]) -> dict[str, Any]:
    """A saved artifact's model config as dataclass fields (JSON stores tuples as lists)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in config["model"].items()}


def _train_or_load(name: str, build, profile: Profile, device, retrain: bool, recipe_fn, train_fn,
                   steps: int | None = None, checkpoint_path: str | Path | None = None, *, labels: bool = False,
                   metrics_fn: Callable[[nn.Module, dict], dict[str, float]] | None = None,
                   model_config_fn: Callable[[dict], Any] | None = None,
                   extras_fn: Callable[[Any, dict], dict[str, Any]] | None = None, stand_in: bool = True):
    """Loads artifact ``name``; if it is missing (or ``retrain``), trains ``train_fn(recipe, images)``
    (``train_fn(recipe, images, labels)`` if ``labels``) on CIFAR-10's training set with ``recipe_fn(profile)``
    (its ``steps`` replaced if given; resuming from ``checkpoint_path`` if it exists), saves the EMA model
    with ``metrics_fn(ema_model, recipe)`` and the tensors ``extras_fn(train_result, recipe)`` if given (e.g.
    the samples of the EMA snapshots), and loads it back. ``stand_in=False``: no other profile's published model
    stands in for a missing one (the chapter that trains the model).
    A corrupted artifact is an error, never retrained over silently; so is one of another profile, or (with
    ``model_config_fn(recipe)``, the recipe's model config dataclass) of another model."""
    recipe = recipe_fn(profile)
    then = f"Training it now with {train_fn.__name__} ({profile.name} recipe)."
    if not retrain and (saved := load_or_stand_in(name, build, profile, device, then, recipe_fn=recipe_fn,
                                                  model_config_fn=model_config_fn, stand_in=stand_in)):
        return saved
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
                      metrics=metrics_fn(result.ema, recipe) if metrics_fn else None,
                      extras=extras_fn(result, recipe) if extras_fn else None)
    dist.barrier()  # the other ranks wait for the files
    return load_artifact(name, build, map_location=device)
