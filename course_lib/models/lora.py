"""Low-rank adaptation, LoRA (Hu et al. 2022, arXiv 2106.09685): fine-tune a frozen network by adding a
trainable low-rank update B A to chosen weight matrices.

    h = W0 x + (alpha / r) B A x        (LoRA Eq. 3, with Sec. 4.1's scale alpha / r)

W0 stays frozen; only A and B train. B starts at zero, so at init the network computes exactly what it
did before. After training, W0 + (alpha / r) B A can be folded into one matrix (``merge_lora``), so the
adapted network costs nothing extra at inference (LoRA Sec. 4.1, "No Additional Inference Latency").

Names -> symbols:
    base    W0      the frozen nn.Linear, weight (d_out, d_in)
    lora_A  A       (r, d_in), random at init (Kaiming-uniform, as nn.Linear and peft; the paper draws it
                    from a Gaussian: any random A works, since B = 0 makes the product zero)
    lora_B  B       (d_out, r), zero at init
    rank    r
    alpha   alpha   the scale's numerator: the update is scaled by alpha / r, so that changing r
                    needs no new learning rate (LoRA Sec. 4.1)
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn


class LoRALinear(nn.Module):
    """base(x) + (alpha / r) x A^T B^T with base frozen: ``LoRALinear(nn.Linear(...), rank=4)``."""

    def __init__(self, base: nn.Linear, rank: int = 4, alpha: float | None = None):
        super().__init__()
        if not isinstance(rank, int) or not 1 <= rank <= min(base.in_features, base.out_features):
            raise ValueError(f"rank must be an int in [1, {min(base.in_features, base.out_features)}], got {rank!r}")
        self.base = base.requires_grad_(False)
        self.rank, self.alpha = rank, float(alpha if alpha is not None else rank)
        w = base.weight
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features, device=w.device, dtype=w.dtype))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, device=w.device, dtype=w.dtype))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # random A, zero B: B A = 0 at init

    @property
    def scale(self) -> float:
        return self.alpha / self.rank  # LoRA Sec. 4.1

    def delta_weight(self) -> torch.Tensor:
        """(alpha / r) B A, (d_out, d_in): what ``merge_lora`` adds to W0."""
        return self.scale * self.lora_B @ self.lora_A

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., d_in) -> (..., d_out)."""
        return self.base(x) + self.scale * ((x @ self.lora_A.T) @ self.lora_B.T)  # LoRA Eq. 3, r-wide in between

    def merged(self) -> nn.Linear:
        """A plain nn.Linear with weight W0 + (alpha / r) B A and W0's bias (LoRA Sec. 4.1)."""
        b = self.base
        out = nn.Linear(b.in_features, b.out_features, bias=b.bias is not None, device=b.weight.device,
                        dtype=b.weight.dtype)
        with torch.no_grad():
            out.weight.copy_(b.weight + self.delta_weight())
            if b.bias is not None:
                out.bias.copy_(b.bias)
        return out.requires_grad_(False)

    def extra_repr(self) -> str:
        return f"rank={self.rank}, alpha={self.alpha}"


Target = tuple[str, ...] | Callable[[str, nn.Linear], bool]


def _matches(target: Target, name: str, module: nn.Linear) -> bool:
    if callable(target):
        return bool(target(name, module))
    return name.rsplit(".", 1)[-1] in target  # the layer's own name: "blocks.3.attn.qkv" -> "qkv"


def _set(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def add_lora(model: nn.Module, target: Target = ("qkv", "proj"), rank: int = 4,
             alpha: float | None = None) -> nn.Module:
    """Freezes every parameter of ``model`` and wraps each matching nn.Linear in a ``LoRALinear``, in place.

    Args:
        target: layer names (the last part of a module's name: ``("qkv", "proj")``, the attention's
            projections: LoRA Sec. 4.2 adapts attention weights only), or a predicate ``target(name, linear) -> bool``.
        rank, alpha: r and alpha; alpha defaults to r (scale 1).
    Returns the model, whose trainable parameters are now the A and B matrices alone.
    """
    model.requires_grad_(False)
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and _matches(target, n, m)]
    if not names:
        raise ValueError(f"no nn.Linear layer of the model matches target {target!r}")
    for name in names:
        _set(model, name, LoRALinear(model.get_submodule(name), rank, alpha))
    return model


def merge_lora(model: nn.Module) -> nn.Module:
    """Replaces every LoRALinear of ``model`` by one nn.Linear with weight W0 + (alpha / r) B A, in place;
    the model then has its original structure (and state_dict keys) and computes the same function."""
    for name in [n for n, m in model.named_modules() if isinstance(m, LoRALinear)]:
        _set(model, name, model.get_submodule(name).merged())
    return model


def trainable_parameters(model: nn.Module) -> int:
    """The number of parameters that require gradients."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
