"""Speed of course_lib's DiT against diffusers' DiTTransformer2DModel built to the same architecture.

The twin has the same depth, width, heads, patch size, input size, label embedding and LayerNorm eps;
after copying weights across, both compute the same function (checked at start-up, and in float64 by
tests/unit/test_dit.py). diffusers gives every block its own timestep and label embedders (DiT shares
one), so it holds depth - 1 extra copies of them: a few per cent more parameters, and the embedders
run once per block. Measured for each precision and with/without torch.compile: training steps/s
(forward + MSE loss + backward + AdamW step, autocast for bf16/fp16) and sampling images/s (one
denoising forward pass under no_grad), class-conditional, on CIFAR-10 pixels (32x32x3, 10 classes:
chapter 7's models). Times are the median over repeats, after warm-up, with torch.cuda.synchronize
on GPUs.

    python benchmarks/dit_vs_diffusers.py --device cpu --config tiny/4 --dtypes fp32 --compile off
    python benchmarks/dit_vs_diffusers.py --device cuda --config S/2 --batch 128 --compile both
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
from course_lib.recipes.ch07_dit import SIZES  # noqa: E402
from course_lib.models.dit import DiT, DiTConfig  # noqa: E402


def diffusers_twin(config: DiTConfig) -> nn.Module:
    """diffusers' DiTTransformer2DModel with the same architecture as DiT(config).

    learn_sigma off (out_channels = in_channels), labels as num_embeds_ada_norm (diffusers' name for
    the number of classes K), DiT's LayerNorm eps 1e-6 in both norms (diffusers' default for the MLP's
    norm is 1e-5). Compare in eval mode: in training mode diffusers' label embedder drops labels
    itself (class_dropout_prob 0.1), where the course drops them in the loss (LabelDropoutLoss).
    """
    import diffusers

    return diffusers.DiTTransformer2DModel(
        num_attention_heads=config.num_heads, attention_head_dim=config.hidden_size // config.num_heads,
        in_channels=config.in_channels, num_layers=config.depth, sample_size=config.input_size,
        patch_size=config.patch_size, num_embeds_ada_norm=config.num_classes, norm_eps=1e-6)


def copy_weights(ours: DiT, twin: nn.Module) -> None:
    """Load ``ours``' weights into its diffusers twin (every block's embedders get the shared ones)."""
    def copy_linear(dst, src):
        dst.weight.copy_(src.weight)
        dst.bias.copy_(src.bias)

    with torch.no_grad():
        copy_linear(twin.pos_embed.proj, ours.x_embedder)
        for blk, b in zip(twin.transformer_blocks, ours.blocks, strict=True):
            emb = blk.norm1.emb
            emb.time_proj.downscale_freq_shift = 0  # DiT's frequencies 10000^(-k/128); diffusers' DiT uses k/127
            copy_linear(emb.timestep_embedder.linear_1, ours.t_embedder.mlp[0])
            copy_linear(emb.timestep_embedder.linear_2, ours.t_embedder.mlp[2])
            emb.class_embedder.embedding_table.weight.copy_(ours.y_embedder.weight)
            copy_linear(blk.norm1.linear, b.adaLN_modulation[1])
            for lin, w, bias in zip((blk.attn1.to_q, blk.attn1.to_k, blk.attn1.to_v), b.attn.qkv.weight.chunk(3),
                                    b.attn.qkv.bias.chunk(3)):
                lin.weight.copy_(w)
                lin.bias.copy_(bias)
            copy_linear(blk.attn1.to_out[0], b.attn.proj)
            copy_linear(blk.ff.net[0].proj, b.mlp[0])
            copy_linear(blk.ff.net[2], b.mlp[2])
        copy_linear(twin.proj_out_1, ours.final_layer.adaLN_modulation[1])
        copy_linear(twin.proj_out_2, ours.final_layer.linear)


CALLS = {"course": lambda m, x, t, y: m(x, t, y),
         "diffusers": lambda m, x, t, y: m(x, t, class_labels=y, return_dict=False)[0]}


def parity_check(ours: DiT, twin: nn.Module, device: torch.device) -> float:
    """Max |ours - twin| after copying perturbed weights (adaLN-Zero's zero init would hide a mismatch)."""
    c = ours.config
    x = torch.randn(2, c.in_channels, c.input_size, c.input_size, device=device)
    t = torch.tensor([3, 700], device=device)
    y = torch.tensor([1, c.num_classes], device=device)  # a label, the null class
    return max_diff_after_copy(ours, twin, copy_weights, CALLS, x, t, y)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_timing_args(p)
    p.add_argument("--config", default="tiny/4", choices=SIZES, help="a chapter 7 size (tiny: the smoke profile's)")
    p.add_argument("--batch", type=int, default=None, help="default: 32 for tiny, else 128")
    args = p.parse_args(argv)
    resolve_timing_args(p, args)
    args.dit_config = DiTConfig.named(args.config, input_size=32, in_channels=3, num_classes=10)  # as dit_config()
    args.batch = args.batch or (32 if args.config.startswith("tiny") else 128)
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    device = torch.device(args.device)
    import diffusers

    torch.manual_seed(0)
    c = args.dit_config
    ours, twin = DiT(c).to(device), diffusers_twin(c).to(device)
    n_ours, n_twin = (sum(p.numel() for p in m.parameters()) for m in (ours, twin))
    print(f"device: {describe_hardware(device)}; torch {torch.__version__}, diffusers {diffusers.__version__}")
    print(f"config {args.config}: {c} ({c.num_tokens} tokens)")
    print(f"parameters: course_lib {n_ours:,}  diffusers {n_twin:,} (per-block embedders)  ratio {n_ours / n_twin:.4f}")
    print(f"same function after copying weights: max |diff| = {parity_check(ours, twin, device):.2e}")
    print(f"batch {args.batch}; per measurement {args.warmup} warm-up + {args.repeats} x {args.steps} timed calls, "
          f"repeats alternating between the two models; TF32 matmul={torch.backends.cuda.matmul.allow_tf32}\n")
    models = {"course": (ours, CALLS["course"]), "diffusers": (twin, CALLS["diffusers"])}
    inputs = make_inputs(args, (c.in_channels, c.input_size, c.input_size), c.num_classes, device)
    print_table(run_rows(models, inputs, args, device), device)


if __name__ == "__main__":
    main()
