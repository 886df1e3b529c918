"""Trains one of the course's reusable models with the chapters' own recipe, on one process or on
several (PyTorch DDP under torchrun), and saves the artifact that the chapters then load.

    python scripts/train.py ch03_unet --profile smoke                    one process
    python scripts/train.py ch03_unet --profile laptop --hours 2.5       a chunk of at most 2.5 hours:
                                                  run the same command again to go on where it stopped
    torchrun --standalone --nproc_per_node=4 scripts/train.py ch03_unet --profile full
    torchrun --standalone --nproc_per_node=4 scripts/train.py ch03_unet --profile full --checkpoint runs/ch03.pt

Training always checkpoints (``--checkpoint``, else ``<cache>/checkpoints/NAME-PROFILE.pt``) and
resumes exactly from it: the data stream, random state and learning-rate schedule go on where they
stopped. With ``--hours H`` the run stops at a checkpoint after H hours and prints how much is left.
The recipe's batch is the global batch: each of the N processes trains on 1/N of it (it must divide
evenly). Only rank 0 writes the checkpoint and the artifact (``<cache>/artifacts/NAME-PROFILE.pt``,
``$COURSE_CACHE`` or ~/.cache/course_lib). See book/distributed.md.
"""

from __future__ import annotations

import argparse
from contextlib import nullcontext
from pathlib import Path

from course_lib.training import distributed as dist
from course_lib.course.artifacts import artifact_dir
from course_lib.course.paths import cache_dir
from course_lib.course.profiles import PROFILES, get_profile
from course_lib.recipes import ch02_vae, ch03_ddpm, ch05_cfg, ch06_ldm, ch07_dit, ch08_flow, ch09_lcm
from course_lib.training.loop import TrainingPaused, time_limit

# name -> its chapter's train-or-load (each recipe module's MODELS)
MODELS = {name: fn for chapter in (ch02_vae, ch03_ddpm, ch05_cfg, ch06_ldm, ch07_dit, ch08_flow, ch09_lcm)
          for name, fn in chapter.MODELS.items()}


def same_model(name: str, profile) -> str:
    """The model that ``name`` is in ``profile``: another name where two recipes coincide (in the laptop profile
    chapter 2's sweep point at beta = 1 is the chapter's VAE, ch02_vae), else ``name``."""
    return ch02_vae.same_model(name, profile)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train a chapter's reusable model and save its artifact.")
    parser.add_argument("model", choices=sorted(MODELS), help="which model (its chapter's recipe)")
    parser.add_argument("--profile", choices=list(PROFILES), default=None,
                        help="run size (default: $COURSE_PROFILE, else smoke)")
    parser.add_argument("--steps", type=int, default=None, help="replace the recipe's number of steps")
    parser.add_argument("--checkpoint", default=None,
                        help="checkpoint file: resume from it if it exists (any number of processes), save to it "
                             "(default: <cache>/checkpoints/NAME-PROFILE.pt)")
    parser.add_argument("--hours", type=float, default=None,
                        help="stop at a checkpoint after this many hours; the same command then goes on")
    parser.add_argument("--retrain", action="store_true", help="train again even if the artifact exists")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    profile = get_profile(args.profile)
    model = same_model(args.model, profile)
    if model != args.model:
        print(f"in the {profile.name} profile {args.model} is {model} (the same recipe): training {model}")
    name = f"{model}-{profile.name}"
    weights = artifact_dir() / f"{name}.pt"
    if weights.exists() and not args.retrain:
        print(f"{weights} exists already; pass --retrain to train {name} again.")
        return
    if args.hours is not None and not args.hours > 0:
        raise SystemExit(f"--hours must be positive, got {args.hours}")
    checkpoint = Path(args.checkpoint) if args.checkpoint else cache_dir() / "checkpoints" / f"{name}.pt"
    dist.init_from_env()
    try:
        device = dist.local_device()
        if dist.is_main():
            print(f"training {name} on {dist.world_size()} process(es), rank 0 on {device}; checkpoint {checkpoint}")
        try:
            with time_limit(args.hours * 3600) if args.hours else nullcontext():
                _, meta = MODELS[model](profile, device, retrain=True, steps=args.steps,
                                             checkpoint_path=checkpoint)
        except TrainingPaused as paused:
            if dist.is_main():
                print(f"{name}: {paused}")
            return
        if dist.is_main():
            print(f"saved {weights} ({meta['config']['recipe']['steps']:,} steps in {meta['train_seconds']:.0f} s "
                  f"of training, all chunks); the chapters load it as {name}")
    finally:
        dist.close()



if __name__ == "__main__":
    main()
