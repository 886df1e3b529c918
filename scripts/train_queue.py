"""Trains a profile's reusable models one after another, in the order the chapters need them, each with
scripts/train.py (its chapter's recipe, an exact-resume checkpoint), within one time budget.

    python scripts/train_queue.py --profile laptop --status        what is saved, started, or still to do
    python scripts/train_queue.py --profile laptop --hours 2.5     train the next models for 2.5 hours;
                                                                   run it again to go on where it stopped

A model whose artifact is saved in the course cache or published with the course (registry.json) is skipped.
Each is trained after the models it loads (chapter 6's model after chapter 2's autoencoder, chapter 5's after
chapter 3's U-Net, ...): were a dependency missing, its chapter's train-or-load would train it inside the
other model's run, without a checkpoint of its own.
When the budget runs out the current model stops at a checkpoint and the queue stops with it. Give the
run both cores and nothing else to do: two trainings side by side on 2 cores do no more work than one
(benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import torch

from course_lib.course.artifacts import artifact_dir
from course_lib.course.paths import cache_dir
from course_lib.course.profiles import PROFILES, get_profile
from course_lib.course.registry import load_registry

# Dependencies first; within that, chapter order, so that each chapter's page can be stored as soon as
# its models are.
QUEUE = ("ch02_sweep_beta0.1", "ch02_sweep_beta1", "ch02_sweep_beta10", "ch02_sweep_beta1_16x16", "ch02_vae",
         "ch03_unet", "ch03_linear_eps", "ch03_cosine_eps", "ch03_cosine_v", "ch05_classifier",
         "ch05_noisy_classifier", "ch05_unet", "ch06_ldm", "ch07_dit_XXS2", "ch07_dit_XS2", "ch07_dit_XS1",
         "ch07_unet", "ch08_fm", "ch08_reflow", "ch09_lcm")

_spec = importlib.util.spec_from_file_location("train_script", Path(__file__).resolve().parent / "train.py")
train_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(train_script)


def status(name: str, profile: str) -> str:
    """The state of artifact NAME-PROFILE: saved (in the course cache), published (in the registry), checkpoint
    at step N, or not started. A name that is another model in this profile (``same_model``) says so."""
    model = train_script.same_model(name, get_profile(profile))
    if model != name:
        return f"{status(model, profile)} (as {model}: the same recipe)"
    if (artifact_dir() / f"{name}-{profile}.pt").exists():
        return "saved"
    if f"{name}-{profile}" in load_registry():
        return "published"
    checkpoint = cache_dir() / "checkpoints" / f"{name}-{profile}.pt"
    if checkpoint.exists():
        step = torch.load(checkpoint, map_location="cpu", weights_only=False)["step"]
        return f"checkpoint at step {step:,}"
    return "not started"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train a profile's reusable models in order, within a budget.")
    parser.add_argument("--profile", choices=list(PROFILES), default=None,
                        help="run size (default: $COURSE_PROFILE, else smoke)")
    parser.add_argument("--hours", type=float, default=None, help="the time budget of this run")
    parser.add_argument("--status", action="store_true", help="list the queue and each model's state; train nothing")
    args = parser.parse_args(argv)
    if not args.status and not (args.hours and args.hours > 0):
        parser.error("give --hours H (a positive number), or --status")
    missing = sorted(set(QUEUE) - set(train_script.MODELS))
    if missing:  # the queue names a model scripts/train.py does not know: a recipe was renamed
        raise SystemExit(f"the queue names models scripts/train.py does not offer: {missing}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    profile = get_profile(args.profile).name
    if args.status:
        for name in QUEUE:
            print(f"{name:24s}{status(name, profile)}")
        return
    deadline = time.monotonic() + args.hours * 3600
    for name in QUEUE:
        if status(name, profile).startswith(("saved", "published")):
            continue
        left = deadline - time.monotonic()
        if left < 60:
            print(f"the budget is spent; next: {name}")
            return
        train_script.main([name, "--profile", profile, "--hours", f"{left / 3600:.4f}"])
        if not status(name, profile).startswith("saved"):  # it stopped at a checkpoint: so does the queue
            return
    print(f"every model of the {profile} queue is saved")


if __name__ == "__main__":
    main()
