"""Sampling-loop overhead: course_lib's ddim_sample, dpmpp_2m_sample and flow_euler_sample against loops
over diffusers' DDIMScheduler, DPMSolverMultistepScheduler and FlowMatchEulerDiscreteScheduler, with the
same model, noise and steps.

Two models: a 1x1 convolution (so cheap that the sampler's own arithmetic and Python dominate) and
the tiny U-Net (UNet(UNetConfig.tiny()), the smoke profile's). Each sampler is timed as one whole
call (timesteps computed inside, as a user would) and reported as milliseconds per step; "model"
is the time of the same number of bare model calls, so "loop - model" is the sampler's overhead.
Both loops are checked to agree (max |difference| of the samples over their max |value|, float32). Times are medians over
repeats that alternate between the implementations (a busy machine slows both alike); a repeat
averages as many calls as fill 0.5 s (0.05 s with --quick).

    python benchmarks/sampler_overhead.py --device cpu --quick
    python benchmarks/sampler_overhead.py --device cuda
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for _harness.py and _table.py beside this file
from _harness import sync  # noqa: E402
from _table import print_markdown_table  # noqa: E402
from course_lib.course.device import describe_hardware  # noqa: E402
from course_lib.samplers.ddim import ddim_sample, timesteps  # noqa: E402
from course_lib.samplers.flow import flow_euler_sample, flow_times  # noqa: E402
from course_lib.models import UNet, UNetConfig  # noqa: E402
from course_lib.samplers.ode import dpm_solver_timesteps, dpmpp_2m_sample  # noqa: E402
from course_lib.process.schedules import make_schedule  # noqa: E402

warnings.filterwarnings("ignore", message="__array__ implementation")  # diffusers + numpy 2
T = 1000


class PointwiseConv(nn.Module):
    """A 1x1 convolution that ignores t: nearly free, so the loop's overhead shows."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x, t):
        return self.conv(x)


def diffusers_scheduler(name: str):
    import diffusers

    if name == "flow_euler":  # chapter 8: sigmas from 1 to 0, the model called at t = 1000 sigma
        return diffusers.FlowMatchEulerDiscreteScheduler(num_train_timesteps=T)
    common = dict(num_train_timesteps=T, beta_start=1e-4, beta_end=0.02, beta_schedule="linear")
    if name == "ddim":  # as course_lib: unclipped, alpha_bar = 1 at the data end, "leading" steps
        return diffusers.DDIMScheduler(**common, clip_sample=False, set_alpha_to_one=True,
                                       timestep_spacing="leading", steps_offset=0)
    return diffusers.DPMSolverMultistepScheduler(**common)  # its defaults: 2M, dpmsolver++, linspace


def samplers(name: str, model, n: int, x_T: torch.Tensor) -> dict:
    """{'course_lib': fn, 'diffusers': fn, 'model': fn}, each running the whole thing once."""
    schedule, sched = make_schedule("linear", T), diffusers_scheduler(name)
    B, dev = x_T.shape[0], x_T.device

    @torch.no_grad()
    def ours():
        if name == "ddim":
            return ddim_sample(model, schedule, x_T, timesteps(T, n, "leading"))
        if name == "flow_euler":
            return flow_euler_sample(model, x_T, flow_times(n, num_train_steps=T))
        return dpmpp_2m_sample(model, schedule, x_T, dpm_solver_timesteps(T, n))

    @torch.no_grad()
    def theirs():
        sched.set_timesteps(n, device=dev)
        x = x_T
        for t in sched.timesteps:
            if name == "flow_euler":  # continuous time, as flow_euler_sample passes it
                out = model(x, torch.full((B,), float(t), device=dev, dtype=x.dtype))
            else:
                out = model(x, torch.full((B,), int(t), device=dev, dtype=torch.long))
            x = sched.step(out, t, x).prev_sample
        return x

    @torch.no_grad()
    def bare():
        t = torch.full((B,), 500, device=dev, dtype=torch.long)
        for _ in range(n):
            model(x_T, t)

    return {"course_lib": ours, "diffusers": theirs, "model": bare}


def median_ms_per_step(fns: dict, n: int, device: torch.device, repeats: int, min_seconds: float) -> dict[str, float]:
    """Median over ``repeats`` samples of ms per step; a sample averages as many calls as fill
    ``min_seconds`` (one for slow models). The caller has run each fn once (warm-up)."""
    calls = {}
    for k, fn in fns.items():
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        calls[k] = max(1, round(min_seconds / (time.perf_counter() - t0)))
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            sync(device)
            t0 = time.perf_counter()
            for _ in range(calls[k]):
                fn()
            sync(device)
            times[k].append((time.perf_counter() - t0) * 1e3 / (n * calls[k]))
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    p.add_argument("--quick", action="store_true", help="fewer repeats and a smaller batch (CPU: about a minute)")
    p.add_argument("--batch", type=int, default=None, help="default: 128 on cuda; 16 on cpu (8 with --quick)")
    p.add_argument("--steps", default="10,50", help="comma-separated numbers of sampling steps")
    p.add_argument("--repeats", type=int, default=None, help="default: 10 (3 with --quick)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default on cpu: 1, steady on a shared machine; the loops are serial)")
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda, but torch.cuda.is_available() is False")
    device = torch.device(args.device)
    if args.threads or device.type == "cpu":
        torch.set_num_threads(args.threads or 1)
    batch = args.batch or (128 if device.type == "cuda" else 8 if args.quick else 16)
    repeats = args.repeats or (3 if args.quick else 10)
    import diffusers

    print(f"{describe_hardware(device)} · torch {torch.__version__} · diffusers {diffusers.__version__} · "
          f"Python {platform.python_version()}")
    print(f"batch {batch} of 3x32x32, fp32, no_grad; median of {repeats} repeats; "
          f"command: python benchmarks/sampler_overhead.py {' '.join(sys.argv[1:] if argv is None else argv)}")
    torch.manual_seed(0)
    models = {"1x1 conv": PointwiseConv(), "tiny U-Net": UNet(UNetConfig.tiny())}
    x_T = torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(1)).to(device)
    rows = []
    for model_name, model in models.items():
        model = model.to(device).eval()
        for sampler in ("ddim", "dpmpp_2m", "flow_euler"):
            for n in (int(s) for s in args.steps.split(",")):
                fns = samplers(sampler, model, n, x_T)
                a, b = fns["course_lib"](), fns["diffusers"]()  # also the warm-up
                diff = ((a - b).abs().max() / b.abs().max()).item()  # relative to the samples' scale
                ms = median_ms_per_step(fns, n, device, repeats, 0.05 if args.quick else 0.5)
                rows.append((model_name, sampler, n, ms, diff))
                print(f"  {model_name} {sampler} {n} steps: done", flush=True)
    print_table(rows)


def print_table(rows) -> None:
    head = ["model", "sampler", "steps", "model ms/step", "course_lib ms/step", "diffusers ms/step",
            "overhead course_lib", "overhead diffusers", "ratio", "max rel. diff"]
    lines = [head]
    for model_name, sampler, n, ms, diff in rows:
        lines.append([model_name, sampler, str(n), f"{ms['model']:.3f}", f"{ms['course_lib']:.3f}",
                      f"{ms['diffusers']:.3f}", f"{ms['course_lib'] - ms['model']:.3f}",
                      f"{ms['diffusers'] - ms['model']:.3f}", f"{ms['diffusers'] / ms['course_lib']:.2f}",
                      f"{diff:.1e}"])
    print("\nms/step = whole sampling call / steps; overhead = loop - model; "
          "ratio = diffusers / course_lib time (above 1: course_lib faster)")
    print_markdown_table(lines)


if __name__ == "__main__":
    main()
