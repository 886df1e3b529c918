"""Quality per CPU-hour of chapter 3's model: which U-Net size to train for the ``laptop`` profile.

Each candidate is trained with chapter 3's own ``laptop`` recipe (``ddpm_recipe``; only the U-Net
differs) for a fixed time, keeping EMA snapshots, then every snapshot is sampled (DDIM, eta 0, trailing
spacing) and scored by FID against CIFAR-10 test images, with its bootstrap standard deviation. The
table is FID against hours of training on this machine (a 2-core CPU: CPU-hours = wall hours).
A run adds --minutes of training to each candidate's checkpoint and scores its EMA snapshots (every
1/14 of the recipe's steps) and its EMA where it stopped, so a longer curve is a rerun away.

    python benchmarks/quality_per_cpu_hour.py --throughput                  images/s per size and precision
    python benchmarks/quality_per_cpu_hour.py --train laptop,laptop_r2 --minutes 60 --fid-samples 500
    python benchmarks/quality_per_cpu_hour.py --checkpoint ~/.cache/course_lib/checkpoints/ch03_unet-laptop.pt

--checkpoint scores the snapshots of any chapter 3 training checkpoint (e.g. scripts/train.py's laptop
run): the FID-over-training curve of the chosen recipe.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _table import print_markdown_table  # noqa: E402
from course_lib.course.device import describe_hardware  # noqa: E402
from course_lib.course.paths import cache_dir  # noqa: E402
from course_lib.course.profiles import get_profile  # noqa: E402
from course_lib.data import load_cifar10  # noqa: E402
from course_lib.evaluation.fid import reference_stats  # noqa: E402
from course_lib.models.unet import UNet, UNetConfig  # noqa: E402
from course_lib.process.diffusion import EpsilonLoss  # noqa: E402
from course_lib.process.schedules import make_schedule  # noqa: E402
from course_lib.recipes.ch03_ddpm import ddpm_recipe, snapshot_fids, train_ddpm  # noqa: E402
from course_lib.training.loop import TrainingPaused, time_limit  # noqa: E402

# name -> U-Net sizes (UNetConfig fields); "laptop" is UNetConfig.laptop, the recipe's choice
CANDIDATES = {
    "laptop": asdict(UNetConfig.laptop()),
    "laptop_r2": asdict(UNetConfig.laptop(num_res_blocks=2)),  # 1.6M: two residual blocks per level
    "wide64": asdict(UNetConfig.laptop(base_channels=64, norm_groups=32, attention_resolutions=(16,))),
}


def throughput(batch: int, steps: int = 3) -> list[list[str]]:
    """Training images/s of each candidate in fp32, fp32 channels_last and bf16 autocast (batch ``batch``)."""
    loss = EpsilonLoss(make_schedule("linear", 1000))
    rows = [["candidate", "parameters", "precision", "images/s"]]
    for name, sizes in CANDIDATES.items():
        for precision in ("fp32", "fp32 channels_last", "bf16"):
            torch.manual_seed(0)
            model = UNet(UNetConfig(**sizes))
            x = torch.randn(batch, 3, 32, 32)
            if "channels_last" in precision:
                model, x = model.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)
            opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

            def step():
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                    value = loss(model, x)
                opt.zero_grad()
                value.backward()
                opt.step()
            step()
            repeats = 1 if precision == "bf16" else steps  # emulated bf16 is slow on CPUs without it
            t0 = time.perf_counter()
            for _ in range(repeats):
                step()
            rate = batch * repeats / (time.perf_counter() - t0)
            n = sum(p.numel() for p in model.parameters())
            rows.append([name, f"{n / 1e6:.2f}M", precision, f"{rate:.1f}"])
            print(rows[-1], flush=True)
    return rows


def train_candidate(name: str, minutes: float) -> Path:
    """Adds ``minutes`` of training to candidate ``name`` (its checkpoint under <cache>/benchmarks)."""
    recipe = ddpm_recipe(get_profile("laptop"))
    ckpt = cache_dir() / "benchmarks" / "quality_per_cpu_hour" / f"{name}.pt"
    data = load_cifar10("train")
    model = UNet(_config(CANDIDATES[name]))
    try:
        with time_limit(minutes * 60):
            train_ddpm(recipe, data.images, model=model, checkpoint_path=ckpt)
    except TrainingPaused as paused:
        print(f"{name}: {paused}")
    return ckpt


def score_checkpoint(label: str, ckpt: Path, fid_samples: int, sampler_steps: int, reference: int,
                     bootstrap: int) -> list[list[str]]:
    """FID of each EMA snapshot of ``ckpt``, of its EMA at the checkpoint's step and of its raw weights there,
    against hours. The raw weights' row is the fair one between candidates at a fixed budget of a few hours:
    an EMA of decay d that starts at the random initialisation still holds d^n of it after n steps."""
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    recipe = ddpm_recipe(get_profile("laptop"))
    config = _config_of(state)
    test = load_cifar10("test")
    ref = reference_stats(test.images[:reference], f"{test.source_id}-test-{reference}", cache_dir() / "fid")
    points = [(step, "EMA", weights) for step, weights in sorted(state["snapshots"].items())]
    points += [(state["step"], "EMA", state["ema"]), (state["step"], "raw", state["model"])]
    marks = state.get("marks") or {}
    params = sum(p.numel() for p in UNet(config).parameters())
    rows = []
    for step, kind, weights in points:  # one at a time, so each row prints as soon as it is measured
        result = snapshot_fids({step: weights}, config, recipe, ref, num_samples=fid_samples,
                               num_steps=sampler_steps, bootstrap=bootstrap)[step]
        hours = marks.get(step, state["seconds"] * step / state["step"]) / 3600  # linear where not recorded
        rows.append([label, f"{params / 1e6:.2f}M", f"{step:,}", kind, f"{hours:.2f}",
                     f"{result.value:.1f} ± {result.std:.1f}", f"{fid_samples:,}"])
        print(rows[-1], flush=True)
    return rows


def _config(sizes: dict) -> UNetConfig:
    return UNetConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in sizes.items()})


def _config_of(state: dict) -> UNetConfig:
    """The U-Net config of a checkpoint: the candidate whose weights' shapes match (the recipe's otherwise)."""
    for sizes in CANDIDATES.values():
        config = _config(sizes)
        shapes = {k: v.shape for k, v in UNet(config).state_dict().items()}
        if shapes == {k: v.shape for k, v in state["ema"].items()}:
            return config
    raise SystemExit("the checkpoint's weights match none of the candidates' U-Nets")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--throughput", action="store_true")
    parser.add_argument("--train", default=None, help=f"comma-separated candidates of {sorted(CANDIDATES)}")
    parser.add_argument("--checkpoint", type=Path, default=None, help="score the snapshots of this checkpoint")
    parser.add_argument("--minutes", type=float, default=60.0, help="training added to each candidate")
    parser.add_argument("--fid-samples", type=int, default=500)
    parser.add_argument("--sampler-steps", type=int, default=50)
    parser.add_argument("--reference", type=int, default=10_000, help="test images behind the FID statistics")
    parser.add_argument("--bootstrap", type=int, default=20)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args(argv)
    print(f"{describe_hardware('cpu')}; torch {torch.__version__}")
    if args.throughput:
        print_markdown_table(throughput(args.batch), left_align_first=True)
    header = [["candidate", "parameters", "step", "weights", "hours (this machine)", "FID ± bootstrap sd",
               "samples"]]
    rows = []
    for name in (args.train.split(",") if args.train else []):
        if name not in CANDIDATES:
            parser.error(f"unknown candidate {name!r}; choose from {sorted(CANDIDATES)}")
        ckpt = train_candidate(name, args.minutes)
        rows += score_checkpoint(name, ckpt, args.fid_samples, args.sampler_steps, args.reference, args.bootstrap)
    if args.checkpoint:
        rows += score_checkpoint(args.checkpoint.stem, args.checkpoint, args.fid_samples, args.sampler_steps,
                                 args.reference, args.bootstrap)
    if rows:
        print_markdown_table(header + rows, left_align_first=True)


if __name__ == "__main__":
    main()
