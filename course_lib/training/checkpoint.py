"""Checkpoints of the training loop: everything needed to resume exactly (weights, EMA, optimizer,
learning-rate schedule, gradient scaler, loss history and log window, torch's random state, EMA
snapshots), written atomically; on resume, a changed lr/weight_decay is applied and said.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..training import distributed as dist
from .ema import EMA

if TYPE_CHECKING:
    from .loop import TrainConfig


@dataclass
class _State:
    """What a checkpoint carries besides the modules: the step, the loss history, the training time of
    the earlier calls, the EMA snapshots and the log window in progress."""
    step: int = 0
    history: list[tuple[int, float]] = field(default_factory=list)
    seconds: float = 0.0
    snapshots: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)
    window: list[float] = field(default_factory=list)  # losses of the log window in progress
    marks: dict[int, float] = field(default_factory=dict)  # snapshot step -> training seconds up to it


def _save_on_main(path: Path, *state) -> None:
    """Rank 0 writes the checkpoint (every rank holds the same state); the others wait for it."""
    if dist.is_main():
        save_checkpoint(path, *state)
    dist.barrier()


def _rng_state(device: torch.device) -> dict[str, Any]:
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def save_checkpoint(path: Path, step: int, model: nn.Module, ema: EMA, optimizer, scheduler, scaler,
                    config: TrainConfig, state: _State, seconds: float) -> None:
    """Write everything needed to resume exactly, atomically (a crash never leaves half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    device = next(model.parameters()).device
    payload = {
        "step": step, "model": model.state_dict(), "ema": ema.model.state_dict(),
        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(), "history": state.history, "rng": _rng_state(device),
        "seconds": state.seconds + seconds, "snapshots": state.snapshots, "window": state.window,
        "marks": state.marks,
        "config": {k: str(v) if isinstance(v, os.PathLike) else v for k, v in asdict(config).items()},
    }
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


_APPLIED_ON_RESUME = ("lr", "weight_decay")  # set on the optimizer from the resumed step on


_IGNORED_ON_RESUME = ("steps", "progress", "checkpoint_path", "checkpoint_every", "log_every")


def load_checkpoint(path: Path, model: nn.Module, ema: EMA, optimizer, scheduler, scaler,
                    config: TrainConfig | None = None) -> _State:
    """Restore a checkpoint written by save_checkpoint (and torch's random state). With ``config``, refuse
    a ``steps`` below the checkpoint's step, apply a new ``lr``/``weight_decay`` and say what changed."""
    try:
        state = torch.load(path, map_location=next(model.parameters()).device, weights_only=True)
    except Exception as err:  # a truncated or foreign file: say which and what to do
        raise RuntimeError(f"Could not read checkpoint {path} ({err}). Delete it to train from scratch.") from err
    if config is not None and config.steps < state["step"]:
        raise ValueError(f"checkpoint {path} is at step {state['step']:,}, past the {config.steps:,} steps asked "
                         f"for. Ask for at least {state['step']:,} steps, or use another checkpoint_path.")
    model.load_state_dict(state["model"])
    ema.model.load_state_dict(state["ema"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])
    if "rng" in state:
        torch.set_rng_state(state["rng"]["cpu"].cpu())
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state(state["rng"]["cuda"].cpu(), next(model.parameters()).device)
    changes = _apply_config_changes(state.get("config", {}), config, optimizer, scheduler) if config else []
    if dist.is_main():
        print(f"Resumed from {path.name} at step {state['step']:,}." + "".join(f"\n  {c}" for c in changes))
    return _State(state["step"], [tuple(h) for h in state["history"]], float(state.get("seconds", 0.0)),
                  dict(state.get("snapshots", {})), list(state.get("window", [])),
                  dict(state.get("marks", {})))


def _apply_config_changes(saved: dict[str, Any], config: TrainConfig, optimizer, scheduler) -> list[str]:
    """Set a changed lr/weight_decay on the optimizer and schedule; describe every setting that changed."""
    changes = []
    for key, new in asdict(config).items():
        if key in _IGNORED_ON_RESUME or key not in saved:
            continue
        old = saved[key]
        if isinstance(new, tuple):
            old = tuple(old)
        if old == new:
            continue
        if key == "lr":
            scheduler.base_lrs = [new for _ in scheduler.base_lrs]
            for group, factor in zip(optimizer.param_groups, [f(scheduler.last_epoch) for f in scheduler.lr_lambdas]):
                group["lr"], group["initial_lr"] = new * factor, new
        elif key == "weight_decay":
            for group in optimizer.param_groups:
                group["weight_decay"] = new
        how = "applied from this step on" if key in _APPLIED_ON_RESUME else "the new value is used from here"
        changes.append(f"{key}: {old} in the checkpoint, {new} now ({how})")
    return changes
