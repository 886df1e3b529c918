"""The laptop cost model (course_lib.book.laptop_cost): its plans read each chapter's P laptop values, it
leaves out the models the laptop profile loads, its arithmetic is the stated rates, and each chapter's laptop
page fits 30 minutes on a 2-core CPU (strict xfail for a chapter not yet sized for it; none is now)."""

import pytest

from course_lib.book import laptop_cost, t4_cost
from course_lib.book.t4_plans import PLANS

# chapters whose laptop page is not yet sized to fit (they train their heavy models on the page, or run
# GPU-sized sweeps), with the issue that sizes them
NOT_YET_SIZED: dict[int, str] = {}


@pytest.mark.parametrize("chapter", sorted(PLANS))
def test_every_chapter_has_laptop_values_its_plan_reads(chapter):
    values = laptop_cost.chapter_values(chapter, "laptop")
    assert values, f"chapter {chapter} has no P laptop values"
    assert all(item.profile == "laptop" for item in laptop_cost.laptop_plan(chapter))


def test_cpu_seconds_are_the_stated_rates(monkeypatch):
    monkeypatch.setattr(laptop_cost, "model_cost", lambda key, profile: t4_cost.ModelCost(flops=1e9, ops=100))
    step = t4_cost.train("a step", "m", steps=10, batch=64)
    assert laptop_cost.cpu_seconds(step) == pytest.approx(
        10 * 3 * (1e9 * 64 / laptop_cost.CPU_TRAIN_FLOPS + 100 * laptop_cost.OP_S))
    draw = t4_cost.sample("samples", "m", images=100, nfe=25, batch=50, cfg=True)  # 2 calls x 25, batch 100
    assert laptop_cost.cpu_seconds(draw) == pytest.approx(50 * (1e9 * 100 / laptop_cost.CPU_INFER_FLOPS
                                                                + 100 * laptop_cost.OP_S))
    assert laptop_cost.cpu_seconds(t4_cost.fid("fid", 500)) == pytest.approx(500 * laptop_cost.INCEPTION_S)


def test_published_models_and_the_published_fid_reference_are_not_counted():
    items = laptop_cost.laptop_plan(3)
    loaded = {i.label for i in items if laptop_cost.loaded(i)}
    assert "U-Net, DDPM: the full run" in loaded and "comparison: 3 more U-Nets" in loaded
    assert "FID reference statistics, 10,000 test images" in loaded
    assert "U-Net, DDPM: the first steps, live" not in loaded  # the page trains those
    assert t4_cost.fid_reference(100).counted  # another reference is computed


def _budget_case(chapter):
    if chapter in NOT_YET_SIZED:
        return pytest.param(chapter, marks=pytest.mark.xfail(strict=True, reason=NOT_YET_SIZED[chapter]))
    return chapter


@pytest.mark.parametrize("chapter", [_budget_case(ch) for ch in sorted(PLANS)])
def test_each_chapters_laptop_page_fits_30_minutes(chapter):
    minutes = laptop_cost.estimate_laptop_minutes(chapter)
    assert minutes <= laptop_cost.BUDGET_MINUTES, f"chapter {chapter}: {minutes:.1f} min on 2 CPU cores (estimated)"


def test_a_missing_chapter_file_says_what_the_estimate_needs(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkout of the course repository"):
        laptop_cost.chapter_values(3, root=tmp_path)


def test_the_intro_time_table_shows_the_laptop_estimates():
    """book/intro.md's laptop column holds each chapter's estimate (scripts/estimate_laptop.py --write), or its
    measured laptop run; the writer changes only that column."""
    import importlib.util
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("estimate_laptop", root / "scripts" / "estimate_laptop.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    text = ("| Chapter | CPU, `smoke` profile | CPU, `laptop` profile (2 cores) | T4 |\n|---|---|---|---|\n"
            "| 1 | 2 min | 14 minutes, measured | x |\n| 2 | 3 min | not run yet | y |\n")
    out = script.intro_with({1: 9.0, 2: 19.04}, text)
    assert "| 1 | 2 min | 14 minutes, measured | x |" in out
    assert "| 2 | 3 min | ≈ 19 min, estimated; not run yet: waits for its published models | y |" in out
    intro = (root / "book" / "intro.md").read_text()
    minutes = {ch: laptop_cost.estimate_laptop_minutes(ch) for ch in sorted(PLANS)}
    assert script.intro_with(minutes, intro) == intro, "run python scripts/estimate_laptop.py --write"
