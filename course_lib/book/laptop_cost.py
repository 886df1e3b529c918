"""What a chapter's ``laptop`` profile costs on a 2-core CPU: an estimate from counted work, in minutes.

The same plans as the Colab T4 estimate (``course_lib.book.t4_plans``), at the ``laptop`` profile's recipes
and the chapter's own ``P`` laptop values (read from the chapter's .py file), timed with rates measured on
this course's 2-core machines instead of a GPU's:

    train     forward flops x batch x 3 (forward + backward) / CPU_TRAIN_FLOPS
    forward   forward flops x batch / CPU_INFER_FLOPS (samplers, encoders, classifiers; no autocast on a CPU)
    FID       INCEPTION_S per image, BOOTSTRAP_S per bootstrap resampling
    ops       OP_S per aten op dispatched (the memory-bound work between the matrix products, and eager
              PyTorch's per-op overhead, which small models feel)

Models the laptop profile publishes are loaded, not trained: the plan items marked ``published`` (a
train-or-load model's full run) and ``counted=False`` (another chapter's model) are left out of the sum;
the live steps a chapter trains on the page are counted. The budget is 30 minutes (issue 18). Estimates
size a chapter before its laptop run; the run itself prints what it took. Checked against a measured run:
chapter 1's laptop page, 15.0 minutes estimated, 14.1 measured (846 s, 2026-12-07).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from .t4_cost import Item, chapter_plan, model_cost

# Fitted on the 2-core machines (benchmarks/README.md, 2026-12-07; FlopCounterMode units, 2 per multiply-add) to
# two measured training steps, the laptop U-Net's (1.3 s at batch 64: 96 Gflop, 567 ops) and chapter 8's swiss-roll
# MLP's (36.8 ms at batch 1,024: 1.8 Gflop, 117 ops): 78 GFLOP/s and 121 us per op. Forward passes: the U-Net
# samples at 108 images/s at batch 250, ~60 GFLOP/s with the same op cost; the FID network takes ~0.13 s an image.
CPU_TRAIN_FLOPS = 78e9
CPU_INFER_FLOPS = 60e9
INCEPTION_S = 0.13
BOOTSTRAP_S = 0.3  # one FID bootstrap resampling (chapter 4's note)
OP_S = 121e-6  # per aten op dispatched: the memory-bound work (norms, activations) that flops do not count
BUDGET_MINUTES = 30

CHAPTERS = Path(__file__).resolve().parents[2] / "chapters"


def chapter_values(chapter: int, profile: str = "laptop", root: Path = CHAPTERS) -> dict[str, Any]:
    """The ``profile`` keywords of ``P = profile.choose(...)`` in chapter ``chapter``'s .py file (literals)."""
    paths = sorted(root.glob(f"{chapter:02d}_*/{chapter:02d}_*.py"))
    if not paths:
        raise FileNotFoundError(f"no chapters/{chapter:02d}_*/{chapter:02d}_*.py under {root}: the laptop estimate "
                                "reads the chapters' P values from a checkout of the course repository")
    for node in ast.walk(ast.parse(paths[0].read_text())):
        if (isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["P"]
                and isinstance(node.value, ast.Call)):
            chosen = next((k.value for k in node.value.keywords if k.arg == profile), None)
            if chosen is None:
                raise ValueError(f"{paths[0].name}: P = profile.choose(...) has no {profile} values")
            return {k.arg: ast.literal_eval(k.value) for k in chosen.keywords}
    raise ValueError(f"{paths[0].name} has no P = profile.choose(...)")


def cpu_seconds(item: Item) -> float:
    """An item's seconds on the 2-core CPU (``cpu`` and ``fixed`` items as they are)."""
    if item.kind in ("cpu", "fixed"):
        return item.calls * item.seconds
    if item.kind == "bootstrap":
        return item.calls * BOOTSTRAP_S
    if item.model == "inception":
        return item.calls * item.batch * INCEPTION_S
    cost = model_cost(item.model, item.profile)
    rate = CPU_TRAIN_FLOPS if item.kind == "train" else CPU_INFER_FLOPS
    return item.calls * item.passes * (cost.flops * item.batch / rate + cost.ops * OP_S)


def laptop_plan(chapter: int, **changes) -> list[Item]:
    """Chapter ``chapter``'s plan at the laptop recipes and its P laptop values, ``changes`` applied."""
    return chapter_plan(chapter, "laptop", chapter_values(chapter, "laptop"), **changes)


def loaded(item: Item) -> bool:
    """Whether the laptop profile loads this item's model instead of doing its work."""
    return item.published or not item.counted


def estimate_laptop_minutes(chapter: int, **changes) -> float:
    """Estimated minutes of chapter ``chapter`` in the laptop profile on a 2-core CPU, its models loaded."""
    return sum(cpu_seconds(i) for i in laptop_plan(chapter, **changes) if not loaded(i)) / 60
