"""Why tests/run_notebooks.sh runs the chapters in two one-thread lanes: the smoke notebooks' three kinds of
work (a tiny U-Net's training step, Inception features for FID, sampling forwards) timed in one process
with two threads, in one process with one thread, and in two one-thread processes at once (the lanes).

Each kind of work is repeated for --seconds and its mean time per unit printed; the last column is the
throughput of two one-thread processes together over one two-thread process (above 1: the lanes win).
Run it on an otherwise idle machine (pause any training):

    python benchmarks/notebook_lanes.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))  # for _table.py beside this file
from _table import print_markdown_table  # noqa: E402

WORK = ("train step (tiny U-Net, batch 32)", "Inception features (per image)", "sampling forward (batch 64)")


def measure(seconds: float) -> dict[str, float]:
    """Seconds per unit of each kind of WORK, in this process with its torch threads."""
    import torch

    from course_lib.evaluation.fid import InceptionFeatures
    from course_lib.models.unet import UNet, UNetConfig

    torch.manual_seed(0)
    model = UNet(UNetConfig.tiny())
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x, t = torch.randn(32, 3, 32, 32), torch.randint(0, 1000, (32,))

    def step():
        loss = (model(x, t) - x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    inception = InceptionFeatures()
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    x64, t64 = torch.randn(64, 3, 32, 32), torch.randint(0, 1000, (64,))

    def sample():
        with torch.no_grad():
            model(x64, t64)

    out = {}
    for name, fn, units in ((WORK[0], step, 1), (WORK[1], lambda: inception(images), len(images)),
                            (WORK[2], sample, 1)):
        fn()  # warm-up
        t0, n = time.perf_counter(), 0
        while time.perf_counter() - t0 < seconds:
            fn()
            n += units
        out[name] = (time.perf_counter() - t0) / n
    return out


def run(threads: int, copies: int, seconds: float) -> list[dict[str, float]]:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    cmd = [sys.executable, __file__, "--worker", "--seconds", str(seconds)]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True) for _ in range(copies)]
    return [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=10.0, help="time spent on each kind of work")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(measure(args.seconds)))
        return
    import torch

    from course_lib.course.device import describe_hardware

    print(f"{describe_hardware(torch.device('cpu'))}; torch {torch.__version__}; {args.seconds:g} s per kind")
    two = run(2, 1, args.seconds)[0]
    one = run(1, 1, args.seconds)[0]
    pair = run(1, 2, args.seconds)
    rows = [["work", "1 process, 2 threads (ms)", "1 process, 1 thread (ms)",
             "2 processes, 1 thread each (ms, mean)", "lanes' throughput / 2 threads'"]]
    for name in WORK:
        both = sum(r[name] for r in pair) / 2
        rows.append([name, f"{1e3 * two[name]:.0f}", f"{1e3 * one[name]:.0f}", f"{1e3 * both:.0f}",
                     f"{2 * two[name] / both:.2f}x"])
    print_markdown_table(rows, left_align_first=True)


if __name__ == "__main__":
    main()
