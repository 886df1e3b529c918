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
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for benchmarks/_harness.py, when imported from a file path
from _harness import (add_timing_args, make_inputs, max_diff_after_copy, print_table,  # noqa: E402
                      resolve_timing_args, run_rows)
from course_lib.course.device import describe_hardware  # noqa: E402
from course_lib.models.unet_blocks import Block, SelfAttention
from course_lib.models.unet import UNet, UNetConfig  # noqa: E402

CONFIGS = {"tiny": UNetConfig.tiny, "small": UNetConfig.small, "ddpm_cifar10": UNetConfig.ddpm_cifar10}


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


CALLS = {"course": lambda m, x, t, y: m(x, t, y), "diffusers": lambda m, x, t, y: m(x, t, y, return_dict=False)[0]}


def parity_check(ours: UNet, twin: nn.Module, device: torch.device) -> float:
    """Max |ours - twin| after copying perturbed weights (so that no zero-initialized layer hides a mismatch)."""
    c = ours.config
    x = torch.randn(2, c.in_channels, c.image_size, c.image_size, device=device)
    t = torch.tensor([3, 700], device=device)
    y = None if c.num_classes is None else torch.tensor([1, c.num_classes], device=device)  # a label, the null class
    return max_diff_after_copy(ours, twin, copy_weights, CALLS, x, t, y)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_timing_args(p)
    p.add_argument("--config", default="tiny", choices=sorted(CONFIGS))
    p.add_argument("--batch", type=int, default=None, help="default: 32 for tiny, else 128 (DDPM's batch)")
    p.add_argument("--channels-last", action="store_true", help="models and inputs in channels_last")
    args = p.parse_args(argv)
    resolve_timing_args(p, args)
    args.unet_config = CONFIGS[args.config]()
    args.batch = args.batch or (32 if args.config == "tiny" else 128)
    return args


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

    models = {"course": (ours, CALLS["course"]), "diffusers": (twin, CALLS["diffusers"])}
    c = args.unet_config
    inputs = make_inputs(args, (c.in_channels, c.image_size, c.image_size), None, device)
    print_table(run_rows(models, inputs, args, device), device)


if __name__ == "__main__":
    main()
