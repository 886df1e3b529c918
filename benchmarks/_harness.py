"""The model benchmarks' shared timing: a training step and a sampling forward of each model on the same
inputs, under autocast and optionally torch.compile, timed in repeats that alternate between the models.

Used by unet_vs_diffusers.py and dit_vs_diffusers.py; each supplies its models as {name: (model, call)},
where ``call(model, x_t, t, y)`` runs one forward pass and returns the prediction (y is None for an
unconditional model).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
import traceback
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from _table import print_markdown_table

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
Call = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


def max_diff_after_copy(ours: nn.Module, twin: nn.Module, copy_weights: Callable[[nn.Module, nn.Module], None],
                        calls: dict[str, Call], x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None) -> float:
    """Max |ours - twin| on (x, t, y) after perturbing copies of ours' weights (so that no zero-initialised
    layer hides a mismatch) and loading them into a copy of the twin with ``copy_weights``."""
    ours, twin = copy.deepcopy(ours).eval(), copy.deepcopy(twin).eval()
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(0.02 * torch.randn_like(p))
        copy_weights(ours, twin)
        return (calls["course"](ours, x, t, y) - calls["diffusers"](twin, x, t, y)).abs().max().item()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_inputs(args, shape: tuple[int, ...], num_classes: int | None, device: torch.device) -> dict:
    """x_t and the target eps of ``(args.batch, *shape)``, steps t, and labels y (None when unconditional)."""
    gen = torch.Generator().manual_seed(0)
    full = (args.batch, *shape)
    fmt = torch.channels_last if getattr(args, "channels_last", False) else torch.contiguous_format
    x_t = torch.randn(full, generator=gen).to(device, memory_format=fmt)
    eps = torch.randn(full, generator=gen).to(device, memory_format=fmt)
    t = torch.randint(0, 1000, (args.batch,), generator=gen).to(device)
    y = None if num_classes is None else torch.randint(0, num_classes, (args.batch,), generator=gen).to(device)
    return {"x_t": x_t, "eps": eps, "t": t, "y": y}


def prepare(model: nn.Module, call: Call, inputs: dict, device: torch.device, amp_dtype, compile_: bool) -> dict:
    """Build the timed calls for one model and make each once (compilation happens here).

    Returns {'train': a training step (forward, MSE loss, backward, AdamW), 'sample': one no_grad forward,
    'first_s': seconds of those first calls, 'step_gib': on CUDA, peak memory of a training step
    above what was allocated before it (activations, gradients, temporaries; None on CPU)}.
    """
    fwd_model = torch.compile(model) if compile_ else model
    opt = torch.optim.AdamW(model.parameters(), lr=2e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)  # as course_lib.training.loop
    x_t, eps, t, y = inputs["x_t"], inputs["eps"], inputs["t"], inputs["y"]

    def autocast():
        return torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None)

    def train() -> None:
        model.train()
        with autocast():
            loss = F.mse_loss(call(fwd_model, x_t, t, y).float(), eps)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    @torch.no_grad()
    def sample() -> None:
        model.eval()
        with autocast():
            call(fwd_model, x_t, t, y)

    t0 = time.perf_counter()
    train()
    sample()
    sync(device)
    first_s = time.perf_counter() - t0
    step_gib = None
    if device.type == "cuda":
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        train()
        step_gib = (torch.cuda.max_memory_allocated(device) - before) / 2**30
    return {"train": train, "sample": sample, "first_s": first_s, "step_gib": step_gib}


def interleaved_seconds(fns: dict[str, Callable[[], None]], device: torch.device, args) -> dict[str, float]:
    """Median seconds per call of each fn: warm-up, then repeats that alternate between the fns
    (so that a busy machine slows both alike)."""
    for fn in fns.values():
        for _ in range(args.warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(args.repeats):
        for name, fn in fns.items():
            sync(device)
            t0 = time.perf_counter()
            for _ in range(args.steps):
                fn()
            sync(device)
            times[name].append((time.perf_counter() - t0) / args.steps)
    return {name: statistics.median(ts) for name, ts in times.items()}


def benchmark_row(models: dict[str, tuple[nn.Module, Call]], inputs: dict, args, device, dtype_name: str,
                  compile_: bool) -> dict:
    """{model name: {'train': steps/s, 'sample': images/s, 'first_s', 'step_gib'} or None if it failed}."""
    torch._dynamo.reset()  # each row compiles afresh
    ready = {}
    for name, (model, call) in models.items():
        label = f"{name} {dtype_name}{' compiled' if compile_ else ''}"
        try:
            ready[name] = prepare(copy.deepcopy(model), call, inputs, device, DTYPES[dtype_name], compile_)
        except Exception as err:  # noqa: BLE001: say why, then go on with the other rows
            why = next((line for line in str(err).splitlines() if line.strip()), type(err).__name__)
            print(f"NOTE: {label} failed and is skipped: {type(err).__name__}: {why[:300]}")
            if not compile_:
                traceback.print_exc()
            continue
        print(f"  {label}: first training step + forward {ready[name]['first_s']:.1f} s", flush=True)
    result = {name: None for name in models}
    if not ready:
        return result
    train = interleaved_seconds({n: r["train"] for n, r in ready.items()}, device, args)
    sample = interleaved_seconds({n: r["sample"] for n, r in ready.items()}, device, args)
    for n, r in ready.items():
        result[n] = {"train": 1.0 / train[n], "sample": args.batch / sample[n], "first_s": r["first_s"],
                     "step_gib": r["step_gib"]}
    return result


def add_timing_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    p.add_argument("--steps", type=int, default=None, help="timed calls per repeat (default: 20 on cuda, 3 on cpu)")
    p.add_argument("--repeats", type=int, default=None, help="median over repeats (default: 5 cuda, 3 cpu)")
    p.add_argument("--warmup", type=int, default=None, help="untimed calls after the first (default: 5 cuda, 1 cpu)")
    p.add_argument("--dtypes", default="fp32,bf16", help=f"comma-separated, from {sorted(DTYPES)}")
    p.add_argument("--compile", default="off", choices=["off", "on", "both"])


def resolve_timing_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Fill the defaults that depend on the device, and check the dtypes."""
    gpu = args.device == "cuda"
    if gpu and not torch.cuda.is_available():
        p.error("--device cuda, but torch.cuda.is_available() is False")
    args.steps = args.steps or (20 if gpu else 3)
    args.repeats = args.repeats or (5 if gpu else 3)
    args.warmup = args.warmup if args.warmup is not None else (5 if gpu else 1)
    args.dtype_names = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    if unknown := set(args.dtype_names) - set(DTYPES):
        p.error(f"unknown dtypes {sorted(unknown)}; choose from {sorted(DTYPES)}")


def run_rows(models: dict[str, tuple[nn.Module, Call]], inputs: dict, args, device) -> list:
    """One row per dtype and compile setting: (dtype, 'on'/'off', course result, diffusers result)."""
    compiles = {"off": [False], "on": [True], "both": [False, True]}[args.compile]
    rows = []
    for dtype_name in args.dtype_names:
        for compile_ in compiles:
            result = benchmark_row(models, inputs, args, device, dtype_name, compile_)
            rows.append((dtype_name, "on" if compile_ else "off", result["course"], result["diffusers"]))
    return rows


def _fmt(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def print_table(rows, device: torch.device) -> None:
    mem = device.type == "cuda"
    head = ["dtype", "compile", "train steps/s course", "diffusers", "ratio",
            "sample img/s course", "diffusers", "ratio"]
    if mem:
        head += ["step GiB course", "diffusers"]
    lines = [head]
    for dtype_name, comp, a, b in rows:
        get = lambda r, k: None if r is None else r[k]  # noqa: E731
        ratio = lambda k: None if a is None or b is None else a[k] / b[k]  # noqa: E731
        line = [dtype_name, comp, _fmt(get(a, "train")), _fmt(get(b, "train")), _fmt(ratio("train"), ".3f"),
                _fmt(get(a, "sample"), ".1f"), _fmt(get(b, "sample"), ".1f"), _fmt(ratio("sample"), ".3f")]
        if mem:
            line += [_fmt(get(a, "step_gib")), _fmt(get(b, "step_gib"))]
        lines.append(line)
    print("\nratio = course_lib / diffusers (above 1: course_lib faster)")
    print_markdown_table(lines)
