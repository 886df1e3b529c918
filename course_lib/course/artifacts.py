"""Trained models that later chapters reuse (the chapter 2 VAE, the chapter 3 U-Net, ...).

An artifact is two files in ``<cache>/artifacts`` (``$COURSE_CACHE``, else ~/.cache/course_lib):
    NAME.pt    {"state_dict": ..., "config": {...}, "extras": {...}}   (torch.save; extras: named tensors
               kept with the weights, e.g. the sample grids of "samples over training")
    NAME.json  sha256 of NAME.pt, the config, and what produced it: profile, hardware, torch
               version, the function that trained it, training time, metrics, date
Loading checks the SHA-256; a mismatch is an error, never a silent use. Saving over an artifact with other
weights keeps the earlier pair under a timestamped name (``paths.set_aside``): nothing is overwritten unasked.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from .paths import cache_dir, set_aside
from .device import describe_hardware


class ArtifactError(RuntimeError):
    """A missing or corrupted artifact; the message says which file and what to do."""


class ArtifactMissingError(ArtifactError):
    """The artifact's files are not there (train-or-load callers then train it)."""


class ArtifactIncompleteError(ArtifactError):
    """NAME.pt is there without its NAME.json: not trained over, unless the registry can vouch for it."""


def artifact_dir() -> Path:
    return cache_dir() / "artifacts"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_artifact(name: str, model: nn.Module, config: dict[str, Any], *, profile: str, produced_by: str,
                  seconds: float | None = None, metrics: dict[str, float] | None = None,
                  history: list[tuple[int, float]] | None = None, directory: Path | None = None,
                  half: bool = False, keep_previous: bool = True,
                  extras: dict[str, torch.Tensor] | None = None) -> Path:
    """Saves ``model``'s weights (on the CPU), ``config`` and ``extras`` (named tensors that belong with the
    weights, such as the samples of the EMA snapshots; loading returns them as ``meta["extras"]``); returns
    the path of NAME.pt. With ``half``,
    floating-point weights are stored in float16 (half the size; loading casts them back to the model's
    dtype), for published files whose sampling is checked unchanged (scripts/publish_model.py). An existing
    NAME.pt with other weights is moved aside with its NAME.json (``set_aside``: NAME.<time>.pt), unless
    ``keep_previous`` is False (a scratch copy, such as scripts/publish_model.py's staging folder)."""
    directory = Path(directory or artifact_dir())
    directory.mkdir(parents=True, exist_ok=True)
    weights = directory / f"{name}.pt"
    state = {k: v.detach().cpu().to(torch.float16) if half and v.is_floating_point() else v.detach().cpu()
             for k, v in model.state_dict().items()}
    extras = dict(extras or {})
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in extras.items()):
        raise TypeError(f"extras must map names to tensors, got {[(k, type(v).__name__) for k, v in extras.items()]}")
    buffer = io.BytesIO()  # serialised in memory: the bytes (and SHA-256) do not depend on a file name
    torch.save({"state_dict": state, "config": config, "extras": {k: v.detach().cpu() for k, v in extras.items()}},
               buffer)
    if keep_previous and weights.exists() and sha256_file(weights) != hashlib.sha256(buffer.getvalue()).hexdigest():
        set_aside(weights, directory / f"{name}.json", what=f"the earlier artifact {name}")
    tmp = weights.with_name(f"{weights.name}.{os.getpid()}.tmp")  # one per process: several may save at once
    tmp.write_bytes(buffer.getvalue())
    tmp.replace(weights)
    device = next(model.parameters()).device
    meta = {
        "name": name, "sha256": sha256_file(weights), "config": config, "profile": profile,
        "hardware": describe_hardware(device), "torch": torch.__version__, "produced_by": produced_by,
        "train_seconds": seconds, "metrics": metrics or {}, "history": [list(h) for h in history or []],
        "storage": "float16" if half else "as trained", "created": _dt.date.today().isoformat(),
        "extra_tensors": {k: [str(v.dtype).removeprefix("torch."), list(v.shape)] for k, v in extras.items()},
    }
    write_json_atomic(directory / f"{name}.json", meta)
    return weights


def load_artifact(name: str, build: Callable[[dict[str, Any]], nn.Module], *, directory: Path | None = None,
                  map_location: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Returns (model built by ``build(config)`` with the saved weights, metadata); ``meta["extras"]`` holds the
    tensors saved with the weights (an empty dict if none). Raises ArtifactMissingError
    if the files are missing, ArtifactError if the weights' SHA-256 differs from the one recorded."""
    directory = Path(directory or artifact_dir())
    weights, meta_path = directory / f"{name}.pt", directory / f"{name}.json"
    if not weights.exists() and not meta_path.exists():
        raise ArtifactMissingError(f"artifact {name!r} not found: expected {weights} and {meta_path}. "
                                   f"Run the chapter that trains it (or its train function) to create it.")
    if not meta_path.exists():  # weights without their record: never retrain over them silently
        raise ArtifactIncompleteError(f"artifact {name!r} is incomplete: {weights} exists but its record {meta_path} is "
                            f"missing, so its checksum and provenance cannot be checked. Restore {meta_path.name}, "
                            f"or delete {weights.name} to train it again.")
    meta = read_meta(meta_path)
    if not weights.exists():
        raise ArtifactMissingError(f"artifact {name!r} not found: {meta_path} exists but {weights} does not. "
                                   f"Run the chapter that trains it (or its train function) to create it.")
    actual = sha256_file(weights)
    if actual != meta["sha256"]:
        raise ArtifactError(f"artifact {name!r} is corrupted: {weights} has SHA-256 {actual}, "
                            f"but {meta_path.name} records {meta['sha256']}. Delete both files and train it again.")
    payload = torch.load(weights, map_location=map_location, weights_only=True)
    model = build(payload["config"])
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as err:  # the model's code changed since the artifact was trained
        raise ArtifactError(f"artifact {name!r} holds weights that do not fit today's {type(model).__name__} "
                            f"(made {meta.get('created', 'on an unrecorded date')} by an earlier version of the "
                            f"model code): {str(err).splitlines()[0]} ... Delete {weights} and {meta_path.name} "
                            f"to train it again (or retrain=True / scripts/train.py --retrain).") from None
    return model.to(map_location).eval(), {**meta, "extras": payload.get("extras", {})}


def read_meta(meta_path: Path) -> dict[str, Any]:
    """An artifact's NAME.json; ArtifactError naming the file when it is not valid JSON or lacks a key."""
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ArtifactError(f"{meta_path} is not valid JSON ({err}). Restore it, or delete it and its "
                            f"{meta_path.stem}.pt to train the artifact again.") from None
    missing = [k for k in ("sha256", "config", "profile") if not isinstance(meta, dict) or k not in meta]
    if missing:
        raise ArtifactError(f"{meta_path} lacks {', '.join(missing)}: it is not an artifact record written by "
                            f"save_artifact. Restore it, or delete it and {meta_path.stem}.pt to train again.")
    return meta


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Writes ``path`` through a temporary file of this process, so readers never see half a file."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
