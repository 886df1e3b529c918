"""The compute of one forward pass, in the DiT paper's Gflops (Peebles & Xie 2023, Table 4).

Counted with ``torch.utils.flop_counter.FlopCounterMode``, which counts the matrix products
(linear layers, convolutions, attention's q k^T and its product with v) at two flops per
multiply-add. The DiT paper counts one multiply-add as one flop (its DiT-XL/2 is 118.6 Gflops),
so ``gflops`` reports FlopCounterMode's count / 2. Elementwise work (norms, activations, softmax)
is not counted, in either convention.

Attention is counted through PyTorch's math backend: the fused CPU kernel that
``F.scaled_dot_product_attention`` picks otherwise is not registered with FlopCounterMode, which
would then miss attention's flops (it reports 0 for them).

Names -> symbols:
    flops    FlopCounterMode's count: 2 per multiply-add, for the whole batch
    gflops   1e9 multiply-adds per sample (the DiT paper's "Gflops")
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode


def forward_flops(model: nn.Module, *args, **kwargs) -> int:
    """FlopCounterMode's total for ``model(*args, **kwargs)`` (2 per multiply-add), run without gradients."""
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(*args, **kwargs)
    return counter.get_total_flops()


def gflops(model: nn.Module, x: torch.Tensor, *args, **kwargs) -> float:
    """Gflops per sample of ``model(x, *args, **kwargs)`` in the DiT paper's convention (multiply-adds / 1e9):
    the batch's count / 2 / B, with B = x.shape[0]."""
    return forward_flops(model, x, *args, **kwargs) / 2 / x.shape[0] / 1e9  # one multiply-add = one flop


def model_gflops(model: nn.Module) -> float:
    """Gflops of one denoising pass ``model(x_t, t)`` for one sample, x_t of the shape ``model.config`` gives
    (``in_channels`` and ``image_size`` for the U-Net, ``input_size`` for DiT); class-conditional models run
    with the null class, which costs the same. To count a large model without allocating its weights, build
    it on the meta device: ``with torch.device("meta"): model = DiT(DiTConfig.base(2))``.
    """
    c = model.config
    size = getattr(c, "input_size", None) or getattr(c, "image_size")
    p = next(model.parameters())
    x_t = torch.zeros(1, c.in_channels, size, size, device=p.device, dtype=p.dtype)  # (1, C, S, S)
    t = torch.zeros(1, dtype=torch.long, device=p.device)  # (1,)
    return gflops(model, x_t, t)
