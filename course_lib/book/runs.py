"""A trained-or-loaded model on the page: what produced it, and its loss curve beside the live run's.

Chapters that train their heavy model with train-or-load (``chapter2_vae``, ``chapter3_unet``,
``chapter5_unet``, ...) also train the same recipe live for its first few steps; ``show_run`` prints the
full run's record and plots both loss histories on one axis, so the reader sees where the live run sits
on the full run's curve.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt

from ..training.loop import TrainResult


def run_record(meta: dict[str, Any], what: str = "model") -> str:
    """One paragraph from an artifact's record: profile, steps, batch, hours, hardware, the model it was
    fine-tuned from (the recipe's ``init``), and the command or function that made it."""
    for key in ("profile", "config", "hardware", "produced_by"):
        if key not in meta:
            raise ValueError(f"meta must be an artifact's record (load_artifact / a chapter's train-or-load), "
                             f"it has no {key!r}")
    run = meta["config"]["recipe"]
    hours = (meta.get("train_seconds") or 0) / 3600
    start = f", fine-tuned from {run['init']}" if run.get("init") else ""
    return (f"the {meta['profile']} {what}: {run['steps']:,} steps of batch {run['batch']}{start} in "
            f"{hours:.2f} h on {meta['hardware']}\nmade by: {meta['produced_by']}")


def show_run(meta: dict[str, Any], live: TrainResult | None = None, *, what: str = "model",
             ylabel: str = "training loss (window mean)", title: str = "training loss", yscale: str = "log",
             figsize: tuple[float, float] = (6, 3)) -> plt.Axes:
    """Prints ``run_record(meta, what)`` and plots the full run's loss history (``meta["history"]``: (step,
    window mean) pairs) and, if given, the live run's (``live.history``), step on a log axis. Returns the
    axes (the figure is shown by the notebook)."""
    print(run_record(meta, what))
    fig, ax = plt.subplots(figsize=figsize)
    if meta.get("history"):
        ax.plot(*zip(*meta["history"]), marker=".", label="full run")
    else:
        print("(this record keeps no loss history)")
    if live is not None and live.history:
        ax.plot(*zip(*live.history), label=f"live, first {live.steps_run:,} steps")
    ax.set(xlabel="optimizer step", xscale="log", yscale=yscale, ylabel=ylabel, title=title)
    ax.legend()
    return ax
