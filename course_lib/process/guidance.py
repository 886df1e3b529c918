"""Guidance: steering a diffusion model towards a class. Classifier-free guidance (CFG; Ho & Salimans
2022, arXiv 2207.12598) and the label dropout that trains for it; classifier guidance (Dhariwal &
Nichol 2021, "D&N") and the classifiers it needs.

Time convention: integer steps t in {0, ..., T-1}, t = 0 nearest the data (see process/schedules.py).
Class-conditional models are called as ``model(x_t, t, y)`` with t a (B,) long tensor; the guided
callables this module returns are called as ``guided(x_t, t)``, so every sampler takes them.

The guidance scale, the course's convention (diffusers' ``guidance_scale``):
    eps_guided = eps_uncond + w (eps_cond - eps_uncond)
    w = 0: the unconditional model; w = 1: the conditional model; w > 1: beyond it.
The CFG paper writes (1 + w') eps_cond - w' eps_uncond (CFG Eq. 6), the same with w = 1 + w':
its best ImageNet 64 FID, at w' = 0.1, is w = 1.1 here.

Names -> symbols:
    y           c            class labels (B,) in {0, ..., K-1}
    null_class  emptyset     label K = num_classes: "no class" (the UNet's learned null embedding)
    p_uncond    p_uncond     probability of dropping a label during training (CFG Alg. 1)
    eps_cond    eps_theta(x_t, t, c)
    eps_uncond  eps_theta(x_t, t, emptyset), or eps_theta(x_t, t, y_neg) for negative guidance
    w           w            the guidance scale above; the CFG paper's w' = w - 1
    phi         phi          CFG rescale's mixing factor (Lin et al. 2024, Sec. 3.4; 0.7 in the paper)
    alpha_bar   alpha_bar_t  the schedule's signal fraction, (T,)
    scale       s            classifier guidance's gradient scale (D&N Alg. 2)
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from .diffusion import PredictionLoss
from .schedules import NoiseSchedule

GuidedModel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def check_labels(y: torch.Tensor, batch: int, num_classes: int | None, allow_null: bool, name: str = "y") -> None:
    """Raise a clear error unless y is an integer tensor (batch,) with labels in [0, K-1], or [0, K]
    where the null class K = num_classes is allowed (no range check when num_classes is None)."""
    if not isinstance(y, torch.Tensor) or y.dtype.is_floating_point or y.dtype == torch.bool or y.is_complex():
        got = y.dtype if isinstance(y, torch.Tensor) else type(y).__name__
        raise TypeError(f"{name} must be an integer tensor of class labels (torch.long), got {got}")
    if y.shape != (batch,):
        raise ValueError(f"{name} must have shape ({batch},), one label per sample; got {tuple(y.shape)}")
    if num_classes is None or not y.numel():
        return
    hi = num_classes if allow_null else num_classes - 1
    lo_y, hi_y = int(y.min()), int(y.max())
    if lo_y < 0 or hi_y > hi:
        null = f" ({num_classes} = the null class)" if allow_null else \
            f" (the null class {num_classes} is not a class to guide towards; use w = 0 for the unconditional model)"
        raise ValueError(f"{name} must hold labels in [0, {hi}]{null}; got values from {lo_y} to {hi_y}")


def _check_probability(p: float, name: str = "p_uncond") -> None:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {p!r}")


def _num_classes(model) -> int | None:
    """K of a class-conditional model that says it (UNetConfig.num_classes), else None."""
    return getattr(getattr(model, "config", None), "num_classes", None)


def _check_scale(w: float | torch.Tensor, name: str = "w") -> None:
    """Raise a clear error unless w is a finite number, or a finite tensor of at most one dimension."""
    if isinstance(w, bool) or not isinstance(w, (int, float, torch.Tensor)):
        raise TypeError(f"{name} must be a float or a tensor of shape (B,), got {type(w).__name__}")
    if isinstance(w, torch.Tensor) and w.ndim > 1:
        raise ValueError(f"{name} must be a scalar or have shape (B,), one scale per sample; got {tuple(w.shape)}")
    if not (bool(torch.isfinite(w).all()) if isinstance(w, torch.Tensor) else math.isfinite(w)):
        raise ValueError(f"{name} must be finite, got {w.tolist() if isinstance(w, torch.Tensor) else w}")


def _scale(w: float | torch.Tensor, like: torch.Tensor, name: str = "w") -> float | torch.Tensor:
    """A checked guidance scale: a float, or a (B,) tensor reshaped to (B, 1, ..., 1) in like's dtype."""
    _check_scale(w, name)
    if not isinstance(w, torch.Tensor):
        return float(w)
    if w.ndim == 1 and w.shape[0] != like.shape[0]:
        raise ValueError(f"{name} has shape {tuple(w.shape)} but the batch holds {like.shape[0]} samples")
    return w.to(like.device, like.dtype).reshape(-1, *([1] * (like.ndim - 1)))  # (B, 1, ..., 1) or (1, ..., 1)


def _unpack(batch) -> tuple[torch.Tensor, torch.Tensor]:
    """(x0, y) from a batch of images and labels, as ``image_batches(images, B, labels=labels)`` yields it."""
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise TypeError("the batch must be a pair (x0, y) of images (B, C, H, W) and labels (B,), as "
                        f"image_batches(images, batch_size, labels=labels) yields; got {type(batch).__name__}")
    return batch[0], batch[1]


def drop_labels(y: torch.Tensor, p_uncond: float, null_class: int, *, u: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Each label replaced by ``null_class`` with probability ``p_uncond`` (CFG Alg. 1).

    ``u``: (B,) uniform draws in [0, 1) (drawn from ``generator`` if not given); label i is dropped
    exactly when u_i < p_uncond, so p_uncond = 0 never drops one and p_uncond = 1 drops every one.
    """
    _check_probability(p_uncond)
    if u is None:
        u = torch.rand(y.shape, device=y.device, generator=generator)
    elif u.shape != y.shape:
        raise ValueError(f"u must have y's shape {tuple(y.shape)}, got {tuple(u.shape)}")
    return torch.where(u < p_uncond, torch.full_like(y, null_class), y)  # CFG Alg. 1: c <- emptyset w.p. p_uncond


class LabelDropoutLoss(PredictionLoss):
    """PredictionLoss for a class-conditional model trained for classifier-free guidance (CFG Alg. 1):
    each label becomes the null class with probability ``p_uncond``, so that one network learns both
    eps(x_t, t, y) and eps(x_t, t, null). Called as ``loss(model, (x0, y))``, the batches of
    ``image_batches(images, B, labels=labels)``; the model as ``model(x_t, t, y)``.

    ``num_classes`` (the null class index K) defaults to ``model.config.num_classes``. The labels are
    dropped first, then t and the noise drawn, all from ``generator`` if given.
    """

    def __init__(self, schedule: NoiseSchedule, p_uncond: float = 0.1, target: str = "eps",
                 num_classes: int | None = None):
        super().__init__(schedule, target)
        _check_probability(p_uncond)
        if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int)
                                        or num_classes < 1):
            raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
        self.p_uncond, self.num_classes = p_uncond, num_classes

    def __call__(self, model: Callable[..., torch.Tensor], batch,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        x0, y = _unpack(batch)
        K = self.num_classes if self.num_classes is not None else _num_classes(model)
        if K is None:
            raise ValueError("LabelDropoutLoss needs the null class index: pass num_classes=K, or train a model "
                             "whose config.num_classes is set (UNetConfig(num_classes=10))")
        check_labels(y, x0.shape[0], K, allow_null=True)
        y = drop_labels(y, self.p_uncond, K, generator=generator)  # (B,)
        return super().__call__(lambda x_t, t: model(x_t, t, y), x0, generator)


def guided_eps(eps_cond: torch.Tensor, eps_uncond: torch.Tensor, w: float | torch.Tensor) -> torch.Tensor:
    """eps_uncond + w (eps_cond - eps_uncond): w = 0 unconditional, w = 1 conditional, w > 1 beyond it.

    The CFG paper's (1 + w') eps_cond - w' eps_uncond (CFG Eq. 6) is this with w = 1 + w'.
    Args:
        eps_cond, eps_uncond: (B, ...) predictions at the same (x_t, t). Any prediction type works
            (eps, x0 or v): the combination's weights sum to 1, so it commutes with their conversions.
        w: a float, or a (B,) tensor with one scale per sample.
    """
    if eps_cond.shape != eps_uncond.shape:
        raise ValueError(f"eps_cond and eps_uncond must share a shape; got {tuple(eps_cond.shape)} "
                         f"and {tuple(eps_uncond.shape)}")
    w = _scale(w, eps_cond)
    return eps_uncond + w * (eps_cond - eps_uncond)  # CFG Eq. 6 with w = 1 + w'


def rescale_guidance(eps_guided: torch.Tensor, eps_cond: torch.Tensor, phi: float) -> torch.Tensor:
    """CFG rescale (Lin et al. 2024, Sec. 3.4, Alg. 2): scale each sample's guided prediction to the
    standard deviation of its conditional one, then mix: phi * rescaled + (1 - phi) * guided.
    phi = 0 is plain CFG. The paper rescales a v prediction; like diffusers, this rescales whatever
    the model predicts."""
    _check_probability(phi, "phi")
    dims = tuple(range(1, eps_guided.ndim))
    std_cond = eps_cond.std(dim=dims, keepdim=True)  # sigma_pos, (B, 1, ..., 1)
    std_guided = eps_guided.std(dim=dims, keepdim=True)  # sigma_cfg
    rescaled = eps_guided * (std_cond / std_guided)  # Lin et al. 2024, Alg. 2: x_cfg * sigma_pos / sigma_cfg
    return phi * rescaled + (1 - phi) * eps_guided  # Lin et al. 2024, Alg. 2: the phi mix


def _as_labels(y: int | torch.Tensor, x_t: torch.Tensor, name: str) -> torch.Tensor:
    if isinstance(y, torch.Tensor):
        if y.shape != (x_t.shape[0],):
            raise ValueError(f"{name} has shape {tuple(y.shape)} but x_t holds {x_t.shape[0]} samples")
        return y.to(x_t.device)
    return torch.full((x_t.shape[0],), y, dtype=torch.long, device=x_t.device)  # (B,)


def _check_cfg_arguments(K: int | None, y, y_neg, w, phi: float, interval) -> None:
    """cfg_model's checks, once, before sampling: labels in [0, K-1], a finite w, phi in [0, 1], t_lo <= t_hi."""
    if K is None:
        raise ValueError("cfg_model needs a class-conditional model that names its null class: "
                         "model.config.num_classes (a UNet built with UNetConfig(num_classes=...))")
    for name, labels in (("y", y), ("y_neg", y_neg)):
        if isinstance(labels, torch.Tensor):
            if labels.ndim != 1:
                raise ValueError(f"{name} must be an int or have shape (B,), got {tuple(labels.shape)}")
            check_labels(labels, labels.shape[0], K, allow_null=False, name=name)
        elif labels is not None and (isinstance(labels, bool) or not isinstance(labels, int) or not 0 <= labels < K):
            raise ValueError(f"{name} must be a label in [0, {K - 1}] or a (B,) tensor of them, got {labels!r}")
    _check_scale(w)
    _check_probability(phi, "phi")
    if interval is not None and (len(interval) != 2 or int(interval[0]) > int(interval[1])):
        raise ValueError(f"interval must be (t_lo, t_hi) with t_lo <= t_hi (integer steps), got {interval!r}")


def cfg_model(model: Callable[..., torch.Tensor], y: int | torch.Tensor, w: float | torch.Tensor, *,
              y_neg: int | torch.Tensor | None = None, interval: tuple[int, int] | None = None,
              phi: float = 0.0) -> GuidedModel:
    """A classifier-free guided model ``guided(x_t, t) -> eps`` for any sampler of the course.

    Each call runs the conditional and the unconditional prediction as one forward pass of the
    doubled batch (x_t, x_t) with labels (y, null), then combines them with ``guided_eps``. It runs
    one pass of the batch where one branch suffices: w = 1, or no sample inside ``interval`` (the
    conditional pass); w = 0 with phi = 0 and every sample inside it (the unconditional pass).

    Args:
        model: a class-conditional ``model(x_t, t, y)`` (a UNet with ``num_classes`` set).
        y: the labels to guide towards, (B,) or an int for every sample.
        w: the guidance scale (0 unconditional, 1 conditional), a float or a (B,) tensor.
        y_neg: negative guidance: labels (B,) or an int whose prediction takes the unconditional
            one's place, eps(y_neg) + w (eps(y) - eps(y_neg)): towards y and away from y_neg.
        interval: (t_lo, t_hi): guide only at steps t_lo <= t <= t_hi (Kynkäänniemi et al. 2024); at
            other steps return the conditional prediction eps(y), i.e. w = 1, as the paper does:
            outside the interval the sampler runs the conditional model it would run with no
            guidance at all (w = 0 there would drop the condition instead).
        phi: CFG rescale's mixing factor in [0, 1] (``rescale_guidance``); 0 is plain CFG.
    """
    K = _num_classes(model)
    _check_cfg_arguments(K, y, y_neg, w, phi, interval)
    plain_w = None if isinstance(w, torch.Tensor) else float(w)

    def guided(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        y_cond = _as_labels(y, x_t, "y")
        y_uncond = _as_labels(K if y_neg is None else y_neg, x_t, "y_neg")  # the null class, or y_neg
        active = None if interval is None else (t >= interval[0]) & (t <= interval[1])  # (B,) bool: guided here
        if plain_w == 1.0 or (active is not None and not bool(active.any())):
            return model(x_t, t, y_cond)  # one pass: the conditional prediction is the answer
        if plain_w == 0.0 and phi == 0.0 and (active is None or bool(active.all())):
            return model(x_t, t, y_uncond)  # one pass: the unconditional prediction is the answer
        out = model(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([y_cond, y_uncond]))  # (2B, ...)
        eps_cond, eps_uncond = out.chunk(2)  # each (B, ...)
        eps = guided_eps(eps_cond, eps_uncond, w)  # CFG Eq. 6 with w = 1 + w'
        if phi > 0:
            eps = rescale_guidance(eps, eps_cond, phi)  # Lin et al. 2024, Sec. 3.4
        if active is not None:
            eps = torch.where(active.reshape(-1, *([1] * (eps.ndim - 1))), eps, eps_cond)  # w = 1 outside
        return eps

    return guided
