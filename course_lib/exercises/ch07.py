"""Chapter 7 exercises: patchify, and the adaLN-Zero residual branch.

Student functions take plain tensors: images x (B, C, S, S) and a patch size p that divides S; token
features x (B, N, D), a branch's output f (B, N, D) and per-sample modulation vectors shift, scale, gate
(B, D) each.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..models.dit import modulate, patchify
from .core import check_against_reference


def check_patchify(student_patchify: Callable) -> None:
    """Exercise 7.1: ``patchify(x, p) -> (B, (S/p)^2, p*p*C)``: the p x p patches in row-major order, each
    flattened as (patch row, patch column, channel)."""
    g = torch.Generator().manual_seed(0)
    cases = [{"x": torch.randn(shape, generator=g, dtype=torch.float64), "p": p}
             for shape, p in [((2, 3, 4, 4), 2), ((1, 3, 32, 32), 4), ((3, 4, 8, 8), 2), ((2, 1, 6, 6), 3)]]
    check_against_reference(
        "patchify", student_patchify, patchify, cases,
        hint="x.reshape(B, C, S/p, p, S/p, p) splits each side into (patch index, position in the patch); "
             "permute to (B, S/p, S/p, p, p, C), i.e. (patch row, patch column, row in patch, column in patch, "
             "channel), then reshape to (B, (S/p)^2, p*p*C). Channels last inside a patch, as in DiT.",
        rtol=0, atol=0)


def _ada_ln_zero(x: torch.Tensor, f: Callable, shift: torch.Tensor, scale: torch.Tensor,
                 gate: torch.Tensor) -> torch.Tensor:
    norm = torch.nn.functional.layer_norm(x, x.shape[-1:], eps=1e-6)
    return x + gate[:, None] * f(modulate(norm, shift, scale))  # DiT Sec. 3.2, adaLN-Zero


def check_ada_ln_zero(student_ada_ln_zero: Callable) -> None:
    """Exercise 7.2: ``ada_ln_zero(x, f, shift, scale, gate) -> x + gate * f(LN(x) * (1 + scale) + shift)``,
    LN without learned affine parameters (eps 1e-6), the (B, D) vectors broadcast over the N tokens."""
    g = torch.Generator().manual_seed(1)
    cases = []
    for B, N, D in [(2, 4, 8), (3, 16, 6), (1, 5, 12)]:
        weight = torch.randn(D, D, generator=g, dtype=torch.float64) / D ** 0.5
        vec = lambda: torch.randn(B, D, generator=g, dtype=torch.float64)  # noqa: E731
        cases.append({"x": torch.randn(B, N, D, generator=g, dtype=torch.float64),
                      "f": lambda h, w=weight: torch.tanh(h @ w), "shift": vec(), "scale": vec(), "gate": vec()})
    cases.append({**cases[0], "gate": torch.zeros_like(cases[0]["gate"])})  # adaLN-Zero at init: the identity
    check_against_reference(
        "ada_ln_zero", student_ada_ln_zero, _ada_ln_zero, cases,
        hint="normalize each token over its D features (torch.nn.functional.layer_norm(x, (D,), eps=1e-6), no "
             "weight or bias), modulate with h * (1 + scale[:, None]) + shift[:, None], apply f, multiply by "
             "gate[:, None] and add x. With gate = 0 the block must return x unchanged.",
        rtol=1e-9, atol=1e-10)
