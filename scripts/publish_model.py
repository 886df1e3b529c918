"""Publishes a trained artifact in the repository: its file in results/models/ and its entry in
course_lib/course/registry.json (SHA-256, size, profile, config, the command that made it, hardware,
training time, loss history, metrics), so that the chapters load it instead of training it.

    python scripts/train.py ch03_unet --profile laptop --hours 2.5     (repeated until it saves the model)
    python scripts/publish_model.py ch03_unet --profile laptop --half --fid-over-training 500

The entry's URL is the file at the release tag (course_lib.book.colab.COURSE_REF) of the repository in
book/_config.yml, which a user without the checkout downloads; a checkout uses its own copy first.
``--half`` stores the weights in float16 once a check shows that sampling is unchanged to ``--tolerance``
(DDIM, 20 steps, 16 images from fixed noise; max |difference| in [-1, 1] pixel units); models without
such a check are published as trained. A published file is replaced only when its recipe changed
(``--replace`` then says so), and all published files together stay within 150 MB.
``--fid-over-training N`` (chapter 3's U-Net) scores each EMA snapshot of the training checkpoint
(``<cache>/checkpoints/NAME-PROFILE.pt``, or ``--checkpoint``) with N DDIM samples (``--fid-sampler-steps``,
default 25) against the 10,000 CIFAR-10 test images and records the curve in the entry's metrics
(``fid_over_training``), which the chapter plots: on a 2-core CPU about 3 minutes per snapshot at N = 500.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course_lib.book.colab import COURSE_REF  # noqa: E402
from course_lib.course.artifacts import artifact_dir, load_artifact, save_artifact, sha256_file  # noqa: E402
from course_lib.course.profiles import PROFILES  # noqa: E402
from course_lib.course.registry import PUBLISHED_DIR, REGISTRY_PATH, load_registry, registry_entry  # noqa: E402
from course_lib.process.schedules import make_schedule  # noqa: E402
from course_lib.course.paths import cache_dir  # noqa: E402
from course_lib.data import load_cifar10  # noqa: E402
from course_lib.evaluation.fid import reference_stats  # noqa: E402
from course_lib.recipes.ch03_ddpm import VARIANTS, _build_unet, snapshot_fids, unet_config  # noqa: E402
from course_lib.samplers.ddim import ddim_sample, timesteps  # noqa: E402

BUDGET_BYTES = 150 * 10**6
# artifact base name -> its build function, for the models whose float16 storage is checked by sampling
HALF_CHECKS = {"ch03_unet": _build_unet, **{name: _build_unet for name in VARIANTS}, "ch05_unet": _build_unet}


@torch.no_grad()
def sampling_difference(model_fp32: torch.nn.Module, model_half: torch.nn.Module, recipe: dict) -> float:
    """Max |difference| of 16 DDIM samples (20 steps, eta 0, same noise) of the two models, in [-1, 1]; the
    models predict the recipe's ``target`` (epsilon if it names none); a class-conditional recipe
    (``num_classes``) samples labels 0, 1, ..., 15 mod the class count."""
    schedule = make_schedule(recipe["schedule"], recipe["num_steps"])
    steps = timesteps(recipe["num_steps"], 20, "trailing")
    noise = torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    target = recipe.get("target", "eps")
    if recipe.get("num_classes"):
        y = torch.arange(16) % recipe["num_classes"]
        model_fp32, model_half = ((lambda x, t, m=m: m(x, t, y)) for m in (model_fp32, model_half))
    a = ddim_sample(model_fp32, schedule, noise, steps, prediction_type=target).clamp(-1, 1)
    b = ddim_sample(model_half, schedule, noise, steps, prediction_type=target).clamp(-1, 1)
    return float((a - b).abs().max())


def fid_over_training(checkpoint: Path, recipe: dict, num_samples: int, sampler_steps: int = 50,
                      reference: int = 10_000) -> dict:
    """The FID-over-training curve of a chapter 3 training checkpoint: each EMA snapshot's FID (``num_samples``
    DDIM samples, eta 0, trailing spacing) with its bootstrap sd and the training hours up to it."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if not state.get("snapshots"):
        raise SystemExit(f"{checkpoint} keeps no EMA snapshots: nothing to score")
    test = load_cifar10("test")
    ref = reference_stats(test.images[:reference], f"{test.source_id}-test-{reference}", cache_dir() / "fid")
    marks = state.get("marks") or {}
    curve = {"steps": [], "hours": [], "fid": [], "std": [], "samples": num_samples,
             "sampler": f"DDIM, {sampler_steps} steps, eta 0, trailing spacing", "reference": ref.name}
    for step in sorted(state["snapshots"]):
        result = snapshot_fids({step: state["snapshots"][step]}, unet_config(recipe), recipe, ref,
                               num_samples=num_samples, num_steps=sampler_steps)[step]
        hours = marks[step] / 3600 if step in marks else None
        print(f"step {step:,}: {result}" + (f" after {hours:.2f} h" if hours is not None else ""), flush=True)
        for key, value in zip(("steps", "hours", "fid", "std"), (step, hours, result.value, result.std)):
            curve[key].append(value)
    return curve


def release_url(name: str) -> str:
    repo = yaml.safe_load((ROOT / "book/_config.yml").read_text())["repository"]["url"].rstrip("/")
    owner_repo = repo.removeprefix("https://github.com/")
    return f"https://raw.githubusercontent.com/{owner_repo}/{COURSE_REF}/results/models/{name}.pt"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="artifact base name, e.g. ch03_unet")
    parser.add_argument("--profile", choices=list(PROFILES), required=True)
    parser.add_argument("--half", action="store_true", help="store float16 weights (checked, see above)")
    parser.add_argument("--tolerance", type=float, default=2 / 255, help="for --half (default 2/255)")
    parser.add_argument("--replace", action="store_true", help="replace a published file whose recipe changed")
    parser.add_argument("--fid-over-training", type=int, default=0, metavar="N",
                        help="score each EMA snapshot of the training checkpoint with N samples (ch03_unet)")
    parser.add_argument("--fid-sampler-steps", type=int, default=25,
                        help="DDIM steps of --fid-over-training's samples (default 25, as chapter 3's laptop FID)")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="the training checkpoint (default <cache>/checkpoints/NAME-PROFILE.pt)")
    args = parser.parse_args(argv)
    name = f"{args.model}-{args.profile}"
    build = HALF_CHECKS.get(args.model)
    if args.half and build is None:
        parser.error(f"--half has no sampling check for {args.model} yet; publish it as trained")
    source = artifact_dir() / f"{name}.pt"
    if not source.exists():
        parser.error(f"{source} does not exist: train it first (python scripts/train.py {args.model} "
                     f"--profile {args.profile} --hours 2.5, repeated until it saves the model)")
    entries = load_registry()
    meta = json.loads((artifact_dir() / f"{name}.json").read_text())
    if name in entries and (PUBLISHED_DIR / f"{name}.pt").exists():
        same_recipe = entries[name]["config"].get("recipe") == json.loads(json.dumps(meta["config"].get("recipe")))
        if same_recipe or not args.replace:
            parser.error(f"{name} is published already" + (" with the same recipe: a published file is replaced "
                         "only when its recipe changes" if same_recipe else "; its recipe changed: pass --replace"))
    if args.fid_over_training and args.model != "ch03_unet":
        parser.error("--fid-over-training scores chapter 3's U-Net snapshots only (ch03_unet)")
    checkpoint = args.checkpoint or cache_dir() / "checkpoints" / f"{name}.pt"
    if args.fid_over_training and not checkpoint.exists():
        parser.error(f"{checkpoint} does not exist: --fid-over-training needs the training checkpoint")
    staging = artifact_dir() / "publish"
    if args.half:
        model, meta = load_artifact(name, build)
        save_artifact(name, model, meta["config"], profile=meta["profile"], produced_by=meta["produced_by"],
                      seconds=meta.get("train_seconds"), metrics=meta.get("metrics"), history=meta.get("history"),
                      directory=staging, half=True, keep_previous=False, extras=meta.get("extras"))
        model_half, _ = load_artifact(name, build, directory=staging)
        diff = sampling_difference(model, model_half, meta["config"]["recipe"])
        print(f"float16 storage: DDIM-20 samples differ by at most {diff:.2e} (tolerance {args.tolerance:.2e})")
        if diff > args.tolerance:
            parser.error("float16 storage changes sampling beyond the tolerance; publish without --half")
        meta = json.loads((staging / f"{name}.json").read_text())
        meta["metrics"] = {**meta.get("metrics", {}), "float16_sampling_max_diff": diff}
        (staging / f"{name}.json").write_text(json.dumps(meta, indent=2) + "\n")
        source = staging / f"{name}.pt"
    if args.fid_over_training:
        curve = fid_over_training(checkpoint, meta["config"]["recipe"], args.fid_over_training,
                                  args.fid_sampler_steps)
        if not args.half:  # the record to edit is the cache's own: copy the pair to staging first
            staging.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, staging / f"{name}.pt")
            (staging / f"{name}.json").write_text((artifact_dir() / f"{name}.json").read_text())
            source = staging / f"{name}.pt"
        meta = json.loads((staging / f"{name}.json").read_text())
        meta["metrics"] = {**meta.get("metrics", {}), "fid_over_training": curve}
        (staging / f"{name}.json").write_text(json.dumps(meta, indent=2) + "\n")
    others = sum(p.stat().st_size for p in PUBLISHED_DIR.glob("*.pt") if p.name != f"{name}.pt")
    if others + source.stat().st_size > BUDGET_BYTES:
        parser.error(f"publishing {source.stat().st_size / 1e6:.1f} MB would exceed the 150 MB budget "
                     f"({others / 1e6:.1f} MB published)")
    command = f"python scripts/train.py {args.model} --profile {args.profile} --hours 2.5 (until saved); " \
              f"python scripts/publish_model.py {args.model} --profile {args.profile}" + \
              (" --half" if args.half else "") + \
              (f" --fid-over-training {args.fid_over_training} --fid-sampler-steps {args.fid_sampler_steps}"
               if args.fid_over_training else "")
    entry = registry_entry(name, release_url(name), command, directory=source.parent)
    PUBLISHED_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, PUBLISHED_DIR / f"{name}.pt")
    assert sha256_file(PUBLISHED_DIR / f"{name}.pt") == entry["sha256"]
    registry = json.loads(REGISTRY_PATH.read_text())
    registry["artifacts"] = dict(sorted({**registry["artifacts"], name: entry}.items()))
    REGISTRY_PATH.write_text(json.dumps(registry, indent=2) + "\n")
    load_registry()  # the schema still holds
    print(f"published {name}: results/models/{name}.pt ({entry['size'] / 1e6:.1f} MB, SHA-256 {entry['sha256']}); "
          f"entry in course_lib/course/registry.json; commit both, and tag {COURSE_REF} at release")
    return 0


if __name__ == "__main__":
    sys.exit(main())
