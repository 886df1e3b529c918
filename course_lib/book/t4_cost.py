"""What a chapter's ``colab`` profile costs on a free Colab T4: an estimate from counted work, in minutes.

Each chapter's colab workload is a plan (``course_lib.book.t4_plans``): a list of items read from the
chapter's ``P = profile.choose(...)`` colab values and the recipes it calls, e.g. "train the small U-Net
30,000 steps at batch 128" or "1,000 samples x 1,076 network evaluations". An item's time is its calls x
the time of one call, and one call takes the longer of

    compute   the model's forward flops (FlopCounterMode, ``course_lib.evaluation.flops``: 2 per multiply-add,
              matrix products only) x batch (x 3 when training: backward ~ 2 forwards) / the rate below, and
    launch    the aten ops of one call (counted on the meta device, views excluded) x LAUNCH_S: small models
              and small batches are bound by eager PyTorch's per-op CPU overhead, not by the GPU,

plus, for a training step, TRAIN_STEP_FIXED_S. The sum over a plan is the chapter's estimate; counting is
on the meta device, so nothing is allocated or run. These are estimates: ``course/t4_minutes.json`` records
each chapter's number with its kind, "estimate" (from here, ``scripts/estimate_t4.py``) or "measured"
(a chapter run on a T4, which the script keeps).

Names -> symbols:
    flops   FlopCounterMode's count for one sample's forward pass (2 per multiply-add)
    ops     aten operators dispatched by one forward call (each ~ one kernel launch on a GPU)
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from ..evaluation.flops import forward_flops

# ---- stated rates for a Colab T4 (Turing, 70 W; datasheet peaks: 65 TFLOP/s fp16 tensor cores,
# 8.1 TFLOP/s fp32, 320 GB/s). Achieved rates on small models are far below peak: their convolutions have
# 64-256 channels, and the norms, activations and attention softmax (not counted as flops, memory-bound)
# take much of the time; Colab's T4 also runs at reduced clocks under its 70 W cap. Assumed, below the
# 12-20 TFLOP/s that mid-size convnets reach in fp16 training on a T4 (a rough check: the colab U-Net's
# step at batch 128 is 1.2 Tflop of convolutions at ~20 TFLOP/s plus ~35 ms of memory-bound group norms
# and activations, ~0.1 s, ~12 TFLOP/s), in FlopCounterMode units:
TRAIN_AMP_FLOPS = 10e12  # fp16 autocast training (the training loop's "auto" on a T4: fp16 + GradScaler)
INFER_FP32_FLOPS = 3.5e12  # fp32 forward passes: the samplers today (no autocast); ~43% of the fp32 peak
INFER_AMP_FLOPS = 12e12  # fp16 autocast forward passes: samplers once they run under autocast
# Eager PyTorch spends ~5-10 us of CPU per aten op on a fast host; Colab's 2 vCPUs (2.0-2.3 GHz Xeon)
# are slow, so 15 us per op launched (views excluded). This bounds every call of a small model.
LAUNCH_S = 15e-6
# Per training step beyond forward/backward: AdamW, gradient clipping and EMA as foreach kernels, the
# GradScaler's found-inf check (a host sync every step, so the launches after it do not overlap the GPU),
# the LR scheduler, drawing the batch. Assumed 150 op launches.
TRAIN_STEP_FIXED_S = 150 * LAUNCH_S
# The FID network: TF-FID Inception v3 at 299 x 299; torchvision lists Inception v3 at 5.71 G multiply-adds
# per image (its weights' "GFLOPS" field); run in fp32 by course_lib.evaluation.fid in batches of 250.
INCEPTION_FLOPS = 2 * 5.71e9
INCEPTION_OPS = 320  # ~94 convolutions, each with its batch norm and ReLU, plus pooling and concatenation
FID_BATCH = 250
# One bootstrap resampling of an FID (``fid(..., bootstrap=B)``: the Frechet distance again on resampled
# features, float64, on the samples' device): ~0.3 s on a 2-core CPU (laptop_cost), assumed 0.05 s on a T4.
BOOTSTRAP_S = 0.05
BUDGET_MINUTES = 45  # a chapter's colab plan must fit one Colab session with room to spare

_VIEW_OPS = {"view", "_unsafe_view", "reshape", "expand", "permute", "transpose", "t", "unsqueeze", "squeeze",
             "slice", "select", "as_strided", "detach", "alias", "split", "split_with_sizes", "chunk",
             "unbind", "flatten", "lift_fresh", "_reshape_alias", "unflatten", "contiguous", "empty",
             "view_as", "expand_as", "narrow"}


class _OpCounter(TorchDispatchMode):
    """Counts the aten operators dispatched under it, views and aliases excluded (no kernel launch)."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket.__name__.strip("_") not in {v.strip("_") for v in _VIEW_OPS}:
            self.count += 1
        return func(*args, **(kwargs or {}))


def count_ops(fn: Callable, *args) -> int:
    """The aten operators (views excluded) that ``fn(*args)`` dispatches, run without gradients."""
    with torch.no_grad(), _OpCounter() as counter:
        fn(*args)
    return counter.count


@dataclass(frozen=True)
class ModelCost:
    flops: float  # one sample's forward pass (FlopCounterMode, 2 per multiply-add)
    ops: int  # one forward call, any batch


@lru_cache(maxsize=None)
def model_cost(key: str, profile: str = "colab") -> ModelCost:
    """Forward flops per sample and ops per call of the plans' model ``key`` (``plan_models.MODELS``) at ``profile``'s
    sizes, counted at batch 2 (flops / 2) on the meta device, or on the CPU where a model checks its inputs' values
    (labels and tokens in range), which meta tensors do not hold. "inception" is the FID network, from
    torchvision's count."""
    if key == "inception":
        return ModelCost(INCEPTION_FLOPS, INCEPTION_OPS)
    from ..course.profiles import PROFILES
    from .plan_models import MODELS
    for device in ("meta", "cpu"):
        try:
            with torch.device(device):
                fn, args = MODELS[key](2, PROFILES[profile])
                return ModelCost(forward_flops(fn, *args) / 2, count_ops(fn, *args))
        except RuntimeError:  # "Tensor.item() cannot be called on meta tensors": count on the CPU
            if device == "cpu":
                raise
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Item:
    """One line of a plan. ``kind``: "train" (``calls`` optimizer steps at ``batch``), "fp32" or "amp"
    (``calls`` forward calls at ``batch``), "bootstrap" (``calls`` FID resamplings), "cpu" (``calls`` x
    ``seconds`` of host work) or "fixed"
    (``seconds`` of wall time set by the chapter itself). ``counted`` False: a model another chapter
    trains and this one loads (shown, not summed). ``published``: the work of a train-or-load model's full
    run (``chapter3_unet`` and the like), which the chapter does on a GPU and loads where the model is
    published (the ``laptop`` profile: ``course_lib.book.laptop_cost``). ``profile``: whose sizes (recipes)."""

    label: str
    kind: str
    model: str = ""
    calls: float = 1
    batch: int = 1
    seconds: float = 0.0
    counted: bool = True
    passes: float = field(default=1.0)  # forward-equivalents per call beyond a plain pass (e.g. 3: a training step)
    published: bool = False
    profile: str = "colab"

    def seconds_total(self) -> float:
        if self.kind in ("cpu", "fixed"):
            return self.calls * self.seconds
        if self.kind == "bootstrap":
            return self.calls * BOOTSTRAP_S
        cost = model_cost(self.model, self.profile)
        rate = {"train": TRAIN_AMP_FLOPS, "fp32": INFER_FP32_FLOPS, "amp": INFER_AMP_FLOPS}[self.kind]
        compute = self.passes * cost.flops * self.batch / rate
        launch = self.passes * cost.ops * LAUNCH_S
        fixed = TRAIN_STEP_FIXED_S if self.kind == "train" else 0.0
        return self.calls * (max(compute, launch) + fixed)


# ---- items in the words of the chapters ---------------------------------------------------------------

def train(label: str, model: str, steps: int, batch: int, *, passes: float = 3.0, counted: bool = True,
          published: bool = False) -> Item:
    """``steps`` optimizer steps at ``batch``: forward + backward ~ 3 forward passes (``passes``)."""
    return Item(label, "train", model, steps, batch, passes=passes, counted=counted, published=published)


def sample(label: str, model: str, images: int, nfe: float, batch: int, *, cfg: bool = False,
           amp: bool = False, published: bool = False) -> Item:
    """``images`` samples with ``nfe`` network evaluations each, in batches of ``batch``; ``cfg``: each
    evaluation runs the doubled batch (conditional and unconditional in one pass)."""
    b = min(batch, images)
    return Item(label, "amp" if amp else "fp32", model, math.ceil(images / b) * nfe, 2 * b if cfg else b,
                published=published)


def fid(label: str, images: int) -> Item:
    """Inception features of ``images`` images (the FID of samples, or a reference's statistics)."""
    return Item(label, "fp32", "inception", math.ceil(images / FID_BATCH), min(images, FID_BATCH))


def fid_reference(images: int) -> Item:
    """The FID reference's Inception statistics: the 10,000 CIFAR-10 test images' are published with the course
    (``results/fid``) and loaded in every profile (not counted); another count is computed."""
    return replace(fid(f"FID reference statistics, {images:,} test images", images), counted=images != 10_000)


def bootstrap(label: str, points: int, resamplings: int) -> Item:
    """The bootstrap standard deviations of ``points`` FIDs, ``resamplings`` each."""
    return Item(label, "bootstrap", calls=points * resamplings)


def cpu(label: str, calls: int, seconds_each: float) -> Item:
    return Item(label, "cpu", calls=calls, seconds=seconds_each)


def fixed(label: str, seconds: float) -> Item:
    return Item(label, "fixed", seconds=seconds)


# ---- estimates ------------------------------------------------------------------------------------------

JSON_PATH = Path(__file__).resolve().parents[1] / "course" / "t4_minutes.json"


def plan_minutes(items: list[Item]) -> float:
    return sum(i.seconds_total() for i in items if i.counted) / 60


def chapter_plan(chapter: int, profile: str = "colab", values: dict | None = None, **changes) -> list[Item]:
    """Chapter ``chapter``'s plan at ``profile``'s recipes and the chapter's P ``values`` for it (default: its
    colab values, ``t4_plans.CHAPTER_P``); ``changes`` replace P or recipe values (see ``t4_plans``)."""
    from ..course.profiles import PROFILES
    from .t4_plans import PLANS
    items = PLANS[chapter](profile=PROFILES[profile], values=values, **changes)
    return [replace(item, profile=profile) for item in items]


def estimate_t4_minutes(chapter: int, **changes) -> float:
    """Estimated T4 minutes of chapter ``chapter`` (1-9) at the colab profile, with ``changes`` applied."""
    return plan_minutes(chapter_plan(chapter, **changes))


def all_estimates() -> dict[int, float]:
    """Every chapter's estimate, {1: minutes, ..., 9: minutes}."""
    from .t4_plans import PLANS
    return {ch: estimate_t4_minutes(ch) for ch in sorted(PLANS)}


def estimates_json(measured: dict[str, dict] | None = None) -> dict[str, dict]:
    """The content of ``course/t4_minutes.json``: {"01": {"minutes": 12.3, "kind": "estimate"}, ...}, the
    entries of ``measured`` (kind "measured") kept as they are."""
    out = {f"{ch:02d}": {"minutes": round(m, 1), "kind": "estimate"} for ch, m in all_estimates().items()}
    for key, entry in (measured or {}).items():
        if entry.get("kind") == "measured":
            out[key] = entry
    return out


def read_json(path: Path = JSON_PATH) -> dict[str, dict]:
    return json.loads(path.read_text()) if path.exists() else {}
