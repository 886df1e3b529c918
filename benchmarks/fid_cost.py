"""What an FID costs: the Inception features of N generated images, in the memory layout course_lib uses
(channels_last) against the default (contiguous), and the Frechet distance itself: from the 2048 x
2048 covariances (float64 eigen-decompositions) and, as ``fid`` computes it when N < 2048, from the
samples' N x N factor. The chapters compute about 25 FIDs in the smoke profile, so
on a CPU this is much of the CI's time.

Each layout is timed on the same resized batch, in repeats that alternate between the two, after a
warm-up call; the features of the two layouts are checked to agree (max |difference|). The Frechet
distance is timed on the samples' statistics against a reference of --reference random images' features.

    python benchmarks/fid_cost.py --device cpu --samples 64
    python benchmarks/fid_cost.py --device cuda --samples 10000
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for _harness.py and _table.py beside this file
from _harness import sync  # noqa: E402
from _table import print_markdown_table  # noqa: E402
from course_lib.course.device import describe_hardware  # noqa: E402
from course_lib.evaluation.fid import INPUT_SIZE, InceptionFeatures, feature_stats, frechet_distance  # noqa: E402


def timed(fn, device) -> float:
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    p.add_argument("--samples", type=int, default=64, help="images per FID (the smoke profile's: 64)")
    p.add_argument("--batch", type=int, default=250, help="Inception batch size (course_lib's default: 250)")
    p.add_argument("--reference", type=int, default=256, help="random images behind the reference statistics")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda, but torch.cuda.is_available() is False")
    device = torch.device(args.device)
    net = InceptionFeatures().net.to(device)
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.samples, 3, 32, 32), generator=gen, dtype=torch.uint8).to(device)
    x = F.interpolate(images.float(), size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False) / 128 - 1
    layouts = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}
    feats = {}

    @torch.no_grad()
    def features(fmt):
        feats[fmt] = torch.cat([net(c.contiguous(memory_format=fmt)) for c in x.split(args.batch)])

    for fmt in layouts.values():
        features(fmt)  # warm-up (and cudnn's algorithm choice)
    times = {name: [] for name in layouts}
    for _ in range(args.repeats):
        for name, fmt in layouts.items():
            times[name].append(timed(lambda: features(fmt), device))
    diff = (feats[torch.channels_last] - feats[torch.contiguous_format]).abs().max().item()

    mu, sigma = feature_stats(feats[torch.channels_last].double())
    ref = torch.randint(0, 256, (args.reference, 3, 32, 32), generator=gen, dtype=torch.uint8).to(device)
    with torch.no_grad():
        ref_feats = torch.cat([net(F.interpolate(c.float(), size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear",
                                                 align_corners=False) / 128 - 1) for c in ref.split(args.batch)])
    ref_mu, ref_sigma = feature_stats(ref_feats.double())
    f = feats[torch.channels_last].double()
    factor = (f - mu).T / (len(f) - 1) ** 0.5 if len(f) < f.shape[1] else None  # as course_lib.evaluation.fid.fid
    fd = {"full": lambda: frechet_distance(mu, sigma, ref_mu, ref_sigma)}
    if factor is not None:
        fd["factor"] = lambda: frechet_distance(mu, sigma, ref_mu, ref_sigma, factor1=factor)
    fd_values = {k: fn() for k, fn in fd.items()}
    fd_times = {k: [timed(fn, device) for _ in range(args.repeats)] for k, fn in fd.items()}

    print(f"{describe_hardware(device)} · torch {torch.__version__} · Python {platform.python_version()}")
    command = " ".join(sys.argv[1:] if argv is None else argv)
    print(f"{args.samples} images (32x32, resized to {INPUT_SIZE}), Inception batch {args.batch}, median of "
          f"{args.repeats} repeats; command: python benchmarks/fid_cost.py {command}")
    print(f"features agree between the layouts to max |diff| {diff:.1e}\n")
    base = statistics.median(times["contiguous"])
    rows = [["step", "seconds", "images/s", "x faster than the first route"]]
    for name in layouts:
        t = statistics.median(times[name])
        rows.append([f"Inception features, {name}", f"{t:.2f}", f"{args.samples / t:,.0f}", f"{base / t:.2f}"])
    rows.append(["Frechet distance, D x D decompositions", f"{statistics.median(fd_times['full']):.2f}", "-", "1.00"])
    if "factor" in fd:
        t = statistics.median(fd_times["factor"])
        rows.append([f"Frechet distance, N x N (fid's route, N < D)", f"{t:.3f}", "-",
                     f"{statistics.median(fd_times['full']) / t:.0f}"])
        print(f"the two Frechet routes agree: {fd_values['full']:.6f} and {fd_values['factor']:.6f}")
    print_markdown_table(rows, left_align_first=True)


if __name__ == "__main__":
    main()
