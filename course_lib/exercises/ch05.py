"""Chapter 5 exercises: the classifier-free guided prediction, and label dropout.

Student functions take plain tensors and numbers: eps_cond and eps_uncond of shape (B, 3, H, W); a
guidance scale w, a float or a (B,) tensor with one scale per image, in the course's convention
(0: unconditional, 1: conditional, above 1: beyond it); labels y (B,) long; the null class index
(num_classes, the label that stands for "no class"); and uniform draws u (B,) in [0, 1).
"""

from __future__ import annotations

from typing import Callable

import torch

from ..process.guidance import drop_labels, guided_eps
from .core import check_against_reference


def check_guided_eps(student_guided_eps: Callable) -> None:
    """Exercise 5.1: ``guided_eps(eps_cond, eps_uncond, w) -> eps``, eps_uncond + w (eps_cond - eps_uncond)."""
    g = torch.Generator().manual_seed(0)
    cases = []
    for shape, w in [((5, 3, 8, 8), 0.0), ((4, 3, 8, 8), 1.0), ((3, 3, 16, 16), 7.5),
                     ((5, 3, 8, 8), torch.tensor([0.0, 1.0, 2.5, 7.5, -1.0], dtype=torch.float64))]:
        cases.append({"eps_cond": torch.randn(shape, generator=g, dtype=torch.float64),
                      "eps_uncond": torch.randn(shape, generator=g, dtype=torch.float64), "w": w})
    check_against_reference(
        "guided_eps", student_guided_eps, guided_eps, cases,
        hint="eps_uncond + w * (eps_cond - eps_uncond): w = 0 gives eps_uncond, w = 1 gives eps_cond. A (B,) "
             "tensor w needs reshaping to (B, 1, 1, 1) so that each image uses its own scale. (The CFG paper "
             "writes (1 + w') eps_cond - w' eps_uncond: its w' is our w - 1.)",
        rtol=1e-9, atol=1e-10)


def check_label_dropout(student_drop_labels: Callable) -> None:
    """Exercise 5.2: ``drop_labels(y, p_uncond, null_class, u) -> y_dropped``: label i becomes ``null_class``
    exactly when u[i] < p_uncond (CFG Alg. 1), so that it is dropped with probability p_uncond."""
    g = torch.Generator().manual_seed(1)
    cases = []
    for n, p, null_class in [(12, 0.1, 10), (8, 0.0, 10), (8, 1.0, 10), (16, 0.5, 100)]:
        u = torch.rand(n, generator=g, dtype=torch.float64)
        u[0] = 0.0  # the edges: u = 0 (kept when p = 0) and u = p (kept: only u < p drops)
        u[1] = p if p < 1 else u[1]
        cases.append({"y": torch.randint(0, 10, (n,), generator=g), "p_uncond": p, "null_class": null_class, "u": u})
    check_against_reference(
        "drop_labels", student_drop_labels,
        lambda y, p_uncond, null_class, u: drop_labels(y, p_uncond, null_class, u=u), cases,
        hint="label i becomes null_class where u[i] < p_uncond and stays y[i] elsewhere: "
             "torch.where(u < p_uncond, null_class, y). Strictly less, so that p_uncond = 0 never drops a "
             "label (not even where u = 0) and each label is dropped with probability exactly p_uncond.",
        rtol=0, atol=0)
