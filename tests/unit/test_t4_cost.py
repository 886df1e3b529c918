"""The Colab T4 cost model (course_lib.book.t4_cost, t4_plans): its stored numbers are current, its plans read
the chapters' colab values and autocast, its flop count is right on a closed form, show_setup prints it, and
each chapter's colab plan fits the 45-minute budget (strict xfail, with the recommended resize, where a
chapter in RESIZES does not yet)."""

import ast
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from course_lib import PROFILES, show_setup
from course_lib.book import t4_cost
from course_lib.book.t4_plans import CHAPTER_P, PLANS, RESIZES, SAMPLING_AUTOCAST
from course_lib.course.profiles import t4_line
from course_lib.evaluation.flops import forward_flops

ROOT = Path(__file__).resolve().parents[2]
STORED = t4_cost.read_json()


def test_stored_minutes_are_what_the_model_computes_now():
    assert set(STORED) == {f"{ch:02d}" for ch in PLANS}, "run python scripts/estimate_t4.py"
    assert t4_cost.estimates_json(STORED) == STORED, "the cost model changed: run python scripts/estimate_t4.py"


def test_flop_and_op_counts_on_a_linear_layer():
    layer, x = nn.Linear(16, 8), torch.zeros(4, 16)
    assert forward_flops(layer, x) == 2 * 4 * 16 * 8  # 2 flops per multiply-add
    assert t4_cost.count_ops(layer, x) == 1  # one addmm (the weight's transpose is a view)
    per_sample = t4_cost.ModelCost(flops=2 * 16 * 8, ops=1)
    compute = per_sample.flops * 4 / t4_cost.INFER_FP32_FLOPS  # 1,024 flops: far below one launch
    assert max(compute, per_sample.ops * t4_cost.LAUNCH_S) == t4_cost.LAUNCH_S


def test_an_item_takes_the_longer_of_compute_and_launches(monkeypatch):
    monkeypatch.setattr(t4_cost, "model_cost", lambda key, profile="colab": t4_cost.ModelCost(flops=1e9, ops=100))
    big = t4_cost.train("big", "m", steps=10, batch=1000)  # 3e12 flops a step: compute-bound
    small = t4_cost.train("small", "m", steps=10, batch=1)  # 300 launches a step: launch-bound
    assert big.seconds_total() == pytest.approx(10 * (3e12 / t4_cost.TRAIN_AMP_FLOPS + t4_cost.TRAIN_STEP_FIXED_S))
    assert small.seconds_total() == pytest.approx(10 * (300 * t4_cost.LAUNCH_S + t4_cost.TRAIN_STEP_FIXED_S))
    cfg = t4_cost.sample("cfg", "m", images=1000, nfe=50, batch=500, cfg=True)
    assert (cfg.calls, cfg.batch) == (100, 1000)


def _colab_values(chapter: int) -> dict:
    """The colab keywords of ``P = profile.choose(...)`` in the chapter's .py file."""
    path = next((ROOT / "chapters").glob(f"{chapter:02d}_*/{chapter:02d}_*.py"))
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["P"]
                and isinstance(node.value, ast.Call)):
            colab = next(k.value for k in node.value.keywords if k.arg == "colab")
            return {k.arg: ast.literal_eval(k.value) for k in colab.keywords}
    raise AssertionError(f"no P = profile.choose(...) in {path}")


@pytest.mark.parametrize("chapter", sorted(CHAPTER_P))
def test_plans_read_the_chapters_colab_values(chapter):
    colab = _colab_values(chapter)
    for key, value in CHAPTER_P[chapter].items():
        assert colab[key] == value, f"chapter {chapter}'s P colab {key} is {colab[key]!r}, the plan has {value!r}"


@pytest.mark.parametrize("chapter", sorted(CHAPTER_P))
def test_plans_know_which_chapters_sample_under_autocast(chapter):
    path = next((ROOT / "chapters").glob(f"{chapter:02d}_*/{chapter:02d}_*.py"))
    uses = "sampling_autocast(device)" in path.read_text()
    assert uses == (chapter in SAMPLING_AUTOCAST), (
        f"{path.name} {'uses' if uses else 'does not use'} course_lib.sampling_autocast; t4_plans.SAMPLING_AUTOCAST "
        f"{'lacks' if uses else 'has'} chapter {chapter}")


def test_show_setup_prints_the_t4_time_of_a_numbered_chapter(capsys, tmp_path):
    show_setup("3 · DDPM on CIFAR-10", {}, profile=PROFILES["smoke"], device=torch.device("cpu"))
    out = capsys.readouterr().out
    assert f"Colab T4: about {STORED['03']['minutes']:.0f} min" in out and "estimated" in out
    for title in ("test", "12 · a chapter not in the table"):
        show_setup(title, {}, profile=PROFILES["smoke"], device=torch.device("cpu"))
        assert "Colab T4" not in capsys.readouterr().out
    measured = tmp_path / "t4.json"
    measured.write_text(json.dumps({"03": {"minutes": 31.6, "kind": "measured"}}))
    assert t4_line("3 · DDPM", measured) == ("Colab T4: 32 min for this chapter at the colab profile "
                                             "(measured on a T4)")
    assert t4_line("4 · DDIM", measured) is None and t4_line("3 · x", tmp_path / "missing.json") is None


def _budget_case(chapter: int):
    if chapter not in RESIZES:
        return chapter
    what, changes = RESIZES[chapter]
    reason = (f"chapter {chapter}'s colab plan is estimated at {STORED[f'{chapter:02d}']['minutes']:.0f} min; "
              f"recommended resize: {what}")
    return pytest.param(chapter, marks=pytest.mark.xfail(strict=True, reason=reason))


@pytest.mark.parametrize("chapter", [_budget_case(ch) for ch in sorted(PLANS)])
def test_each_chapter_fits_a_colab_session(chapter):
    minutes = STORED[f"{chapter:02d}"]["minutes"]
    assert minutes <= t4_cost.BUDGET_MINUTES, f"chapter {chapter}: {minutes} min on a T4 (estimated)"


def test_the_recommended_resizes_fit():
    for chapter, (what, changes) in RESIZES.items():  # none while every chapter fits
        minutes = t4_cost.estimate_t4_minutes(chapter, **changes)
        assert minutes <= t4_cost.BUDGET_MINUTES, f"chapter {chapter} after '{what}': {minutes:.1f} min"


def test_the_intro_time_table_shows_the_stored_minutes():
    rows = {line.split("|")[1].strip(): line for line in (ROOT / "book" / "intro.md").read_text().splitlines()
            if line.startswith("| ") and line.split("|")[1].strip().isdigit()}
    for key, entry in STORED.items():
        label = (f"≈ {entry['minutes']:.0f} min, estimated" if entry["kind"] == "estimate"
                 else f"{entry['minutes']:.0f} min, measured")
        assert label in rows[str(int(key))], f"book/intro.md's row {int(key)} lacks '{label}'"


def test_the_intro_writer_fills_only_the_colab_t4_column():
    """scripts/estimate_t4.py rewrites the Colab T4 cells of the time table and no other table's cells
    (the chapter table before it has a number in its first column too), and book/intro.md is up to date."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("estimate_t4", ROOT / "scripts" / "estimate_t4.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    text = ("| # | Chapter | Builds on |\n|---|---|---|\n| 3 | DDPM | 1 |\n\n"
            "| Chapter | CPU | Colab T4, `colab` | H100 |\n|---|---|---|---|\n| 3 | 5 min | old | n/a |\n")
    out = script.intro_with({"03": {"minutes": 42.04, "kind": "estimate"}}, text)
    assert "| 3 | DDPM | 1 |" in out and "| 3 | 5 min | ≈ 42 min, estimated | n/a |" in out
    intro = (ROOT / "book" / "intro.md").read_text()
    assert script.intro_with(STORED, intro) == intro, "run python scripts/estimate_t4.py"
