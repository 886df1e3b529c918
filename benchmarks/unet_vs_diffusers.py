"""Speed of course_lib's UNet against diffusers' UNet2DModel built to the same architecture.

The twin has the same widths per level, blocks per level, attention resolutions and heads, time
embedding, GroupNorm groups and dropout; after copying weights across, both compute the same
function (checked at start-up, and by tests/unit/test_unet.py). Measured for each precision and
with/without torch.compile: training steps/s (forward + backward + AdamW step, autocast for
bf16) and sampling images/s (one denoising forward pass under no_grad at the same batch size).
Times are the median over repeats, after warm-up, with torch.cuda.synchronize on GPUs.

    python benchmarks/unet_vs_diffusers.py --device cpu --config tiny --dtypes fp32,bf16 --compile off
    python benchmarks/unet_vs_diffusers.py --device cuda --config ddpm_cifar10 --batch 128 --compile both
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for benchmarks/_table.py, when imported from a file path
from _table import print_markdown_table  # noqa: E402
from course_lib.device import describe_hardware  # noqa: E402
from course_lib.models.unet import Block, SelfAttention, UNet, UNetConfig  # noqa: E402

CONFIGS = {"tiny": UNetConfig.tiny, "small": UNetConfig.small, "ddpm_cifar10": UNetConfig.ddpm_cifar10}
DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def diffusers_twin(c: UNetConfig) -> nn.Module:
    """diffusers' UNet2DModel with the same architecture as UNet(c)."""
    from diffusers import UNet2DModel

    widths = tuple(c.base_channels * m for m in c.channel_mult)
    if any(w % c.norm_groups for w in widths):
        raise ValueError(f"diffusers uses one GroupNorm group count; norm_groups {c.norm_groups} must divide {widths}")
    attn = [r in c.attention_resolutions for r in c.resolutions]
    return UNet2DModel(
        sample_size=c.image_size, in_channels=c.in_channels, out_channels=c.out_channels or c.in_channels,
        block_out_channels=widths, layers_per_block=c.num_res_blocks,
        down_block_types=tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in attn),
        up_block_types=tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attn)),
        attention_head_dim=c.head_dim, norm_num_groups=c.norm_groups, dropout=c.dropout,
        time_embedding_dim=c.emb_dim, flip_sin_to_cos=True, freq_shift=0, downsample_padding=1,
        num_class_embeds=None if c.num_classes is None else c.num_classes + 1,  # + the null class
    )


def _res_keys(src: nn.Module, dst: str) -> dict[str, torch.Tensor]:
    names = {"emb_proj": "time_emb_proj", "skip": "conv_shortcut"}
    return {f"{dst}.{names.get(k.split('.')[0], k.split('.')[0])}.{k.split('.', 1)[1]}": v
            for k, v in src.state_dict().items()}


def _attn_keys(src: nn.Module, dst: str) -> dict[str, torch.Tensor]:
    w, b = src.qkv.weight.chunk(3), src.qkv.bias.chunk(3)  # (3C, C) -> q, k, v rows
    out = {f"{dst}.group_norm.weight": src.norm.weight, f"{dst}.group_norm.bias": src.norm.bias,
           f"{dst}.to_out.0.weight": src.proj.weight, f"{dst}.to_out.0.bias": src.proj.bias}
    for i, name in enumerate(("to_q", "to_k", "to_v")):
        out[f"{dst}.{name}.weight"], out[f"{dst}.{name}.bias"] = w[i], b[i]
    return out


def copy_weights(model: UNet, twin: nn.Module) -> None:
    """Load ``model``'s weights into its diffusers twin (strict: every twin weight gets a value)."""
    sd = {"conv_in.weight": model.conv_in.weight, "conv_in.bias": model.conv_in.bias,
          "conv_norm_out.weight": model.out[0].weight, "conv_norm_out.bias": model.out[0].bias,
          "conv_out.weight": model.out[2].weight, "conv_out.bias": model.out[2].bias}
    for i, name in ((0, "linear_1"), (2, "linear_2")):
        sd[f"time_embedding.{name}.weight"] = model.time_mlp[i].weight
        sd[f"time_embedding.{name}.bias"] = model.time_mlp[i].bias
    if model.label_emb is not None:
        sd["class_embedding.weight"] = model.label_emb.weight
    for layers, blocks, prefix, sampler in ((model.down, twin.down_blocks, "down_blocks", "downsamplers"),
                                            (model.up, twin.up_blocks, "up_blocks", "upsamplers")):
        slots = []  # the twin's (resnet, attention) names, or (conv, None), in the order of our ModuleList
        for i, blk in enumerate(blocks):
            slots += [(f"{prefix}.{i}.resnets.{j}", f"{prefix}.{i}.attentions.{j}") for j in range(len(blk.resnets))]
            if getattr(blk, sampler, None):
                slots.append((f"{prefix}.{i}.{sampler}.0.conv", None))
        for layer, (name, attn_name) in zip(layers, slots, strict=True):
            if isinstance(layer, Block):
                sd |= _res_keys(layer.res, name)
                if isinstance(layer.attn, SelfAttention):
                    sd |= _attn_keys(layer.attn, attn_name)
            else:  # Downsample / Upsample: one conv
                sd |= {f"{name}.{k.split('.', 1)[1]}": v for k, v in layer.state_dict().items()}
    sd |= _res_keys(model.mid.res, "mid_block.resnets.0") | _attn_keys(model.mid.attn, "mid_block.attentions.0")
    sd |= _res_keys(model.mid2, "mid_block.resnets.1")
    twin.load_state_dict(sd, strict=True)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def prepare(model: nn.Module, unwrap: bool, args, device: torch.device, amp_dtype, compile_: bool) -> dict:
    """Build the timed calls for one model and make each once (compilation happens here).

    Returns {'train': a training step (forward, backward, AdamW), 'sample': one no_grad forward,
    'first_s': seconds of those first calls, 'step_gib': on CUDA, peak memory of a training step
    above what was allocated before it (activations, gradients, temporaries; None on CPU)}.
    """
    c = args.unet_config
    fwd_model = torch.compile(model) if compile_ else model
    fwd = (lambda x, t: fwd_model(x, t, return_dict=False)[0]) if unwrap else fwd_model
    opt = torch.optim.AdamW(model.parameters(), lr=2e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)  # as course_lib.training
    gen = torch.Generator().manual_seed(0)
    shape = (args.batch, c.in_channels, c.image_size, c.image_size)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    x_t = torch.randn(shape, generator=gen).to(device, memory_format=fmt)
    eps = torch.randn(shape, generator=gen).to(device, memory_format=fmt)
    t = torch.randint(0, 1000, (args.batch,), generator=gen).to(device)

    def autocast():
        return torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None)

    def train() -> None:
        model.train()
        with autocast():
            loss = F.mse_loss(fwd(x_t, t).float(), eps)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    @torch.no_grad()
    def sample() -> None:
        model.eval()
        with autocast():
            fwd(x_t, t)

    t0 = time.perf_counter()
    train()
    sample()
    _sync(device)
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
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(args.steps):
                fn()
            _sync(device)
            times[name].append((time.perf_counter() - t0) / args.steps)
    return {name: statistics.median(ts) for name, ts in times.items()}


def benchmark_row(models: dict[str, tuple[nn.Module, bool]], args, device, dtype_name: str, compile_: bool) -> dict:
    """{model name: {'train': steps/s, 'sample': images/s, 'first_s', 'step_gib'} or None if it failed}."""
    torch._dynamo.reset()  # each row compiles afresh
    ready = {}
    for name, (model, unwrap) in models.items():
        label = f"{name} {dtype_name}{' compiled' if compile_ else ''}"
        try:
            ready[name] = prepare(copy.deepcopy(model), unwrap, args, device, DTYPES[dtype_name], compile_)
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


def parity_check(ours: UNet, twin: nn.Module, device: torch.device) -> float:
    """Max |ours - twin| after copying (perturbed, so that no zero-initialized layer hides a mismatch) weights."""
    ours, twin = copy.deepcopy(ours).eval(), copy.deepcopy(twin).eval()
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(0.02 * torch.randn_like(p))
    copy_weights(ours, twin)
    c = ours.config
    x = torch.randn(2, c.in_channels, c.image_size, c.image_size, device=device)
    t = torch.tensor([3, 700], device=device)
    y = None if c.num_classes is None else torch.tensor([1, c.num_classes], device=device)  # a label, the null class
    with torch.no_grad():
        return (ours(x, t, y) - twin(x, t, y, return_dict=False)[0]).abs().max().item()


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    p.add_argument("--config", default="tiny", choices=sorted(CONFIGS))
    p.add_argument("--batch", type=int, default=None, help="default: 32 for tiny, else 128 (DDPM's batch)")
    p.add_argument("--steps", type=int, default=None, help="timed calls per repeat (default: 20 on cuda, 3 on cpu)")
    p.add_argument("--repeats", type=int, default=None, help="median over repeats (default: 5 cuda, 3 cpu)")
    p.add_argument("--warmup", type=int, default=None, help="untimed calls after the first (default: 5 cuda, 1 cpu)")
    p.add_argument("--dtypes", default="fp32,bf16", help=f"comma-separated, from {sorted(DTYPES)}")
    p.add_argument("--compile", default="off", choices=["off", "on", "both"])
    p.add_argument("--channels-last", action="store_true", help="models and inputs in channels_last")
    args = p.parse_args(argv)
    gpu = args.device == "cuda"
    if gpu and not torch.cuda.is_available():
        p.error("--device cuda, but torch.cuda.is_available() is False")
    args.unet_config = CONFIGS[args.config]()
    args.batch = args.batch or (32 if args.config == "tiny" else 128)
    args.steps = args.steps or (20 if gpu else 3)
    args.repeats = args.repeats or (5 if gpu else 3)
    args.warmup = args.warmup if args.warmup is not None else (5 if gpu else 1)
    args.dtype_names = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    if unknown := set(args.dtype_names) - set(DTYPES):
        p.error(f"unknown dtypes {sorted(unknown)}; choose from {sorted(DTYPES)}")
    return args


def _fmt(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def main(argv=None) -> None:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    import diffusers

    torch.manual_seed(0)
    ours, twin = UNet(args.unet_config).to(device), diffusers_twin(args.unet_config).to(device)
    if args.channels_last:
        ours, twin = ours.to(memory_format=torch.channels_last), twin.to(memory_format=torch.channels_last)
    n_ours, n_twin = (sum(p.numel() for p in m.parameters()) for m in (ours, twin))
    print(f"device: {describe_hardware(device)}; torch {torch.__version__}, diffusers {diffusers.__version__}")
    print(f"config {args.config}: {args.unet_config}")
    print(f"parameters: course_lib {n_ours:,}  diffusers {n_twin:,}  ratio {n_ours / n_twin:.4f}")
    print(f"same function after copying weights: max |diff| = {parity_check(ours, twin, device):.2e}")
    print(f"batch {args.batch}; per measurement {args.warmup} warm-up + {args.repeats} x {args.steps} timed calls, "
          f"repeats alternating between the two models; "
          f"channels_last={args.channels_last}; TF32 matmul={torch.backends.cuda.matmul.allow_tf32}, "
          f"cudnn={torch.backends.cudnn.allow_tf32}\n")

    compiles = {"off": [False], "on": [True], "both": [False, True]}[args.compile]
    models = {"course": (ours, False), "diffusers": (twin, True)}
    rows = []
    for dtype_name in args.dtype_names:
        for compile_ in compiles:
            result = benchmark_row(models, args, device, dtype_name, compile_)
            rows.append((dtype_name, "on" if compile_ else "off", result["course"], result["diffusers"]))
    print_table(rows, device)


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


if __name__ == "__main__":
    main()
