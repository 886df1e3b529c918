"""tests/run_notebooks.sh runs the chapter notebooks in two lanes at once: check that its lanes hold every
chapter once and that each chapter runs only after every chapter whose models it loads has finished
(earlier in its own lane, or through a declared wait), so that no two notebooks train the same model at
once and none trains a model that its rightful chapter is about to train."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "run_notebooks.sh"
RECIPES = ROOT / "course_lib" / "recipes"


def lanes() -> dict[str, list[tuple[str, str | None]]]:
    """{"A": [(chapter, waits_for or None), ...], "B": ...} as the script declares them."""
    out = {}
    for name, body in re.findall(r"^LANE_([A-Z])=\(([^)]*)\)", SCRIPT.read_text(), re.M):
        entries = [e.strip('"') for e in body.split()]
        out[name] = [(e.split(":")[0], e.split(":")[1] if ":" in e else None) for e in entries]
    return out


def number(chapter: str) -> int:
    return int(chapter[:2])


def recipe_chapters(module: str, seen: set[str] | None = None) -> set[int]:
    """Chapters whose recipes course_lib/recipes/<module>.py uses, through its imports of other recipes."""
    seen = set() if seen is None else seen
    if module in seen:
        return set()
    seen.add(module)
    out = {int(module[2:4])}
    for other in re.findall(r"^from \.(ch\d\d_\w+) import", (RECIPES / f"{module}.py").read_text(), re.M):
        out |= recipe_chapters(other, seen)
    return out


def needs(chapter: str) -> set[int]:
    """Other chapters whose models the notebook may load (or would train, were they missing): those of the
    chapterN_... functions it calls and of every recipe module it imports, with the recipes those import."""
    source = (ROOT / "chapters" / chapter / f"{chapter}.py").read_text()
    out = {int(k) for k in re.findall(r"\bchapter(\d)_\w+\(", source)}
    for module in re.findall(r"^from course_lib\.recipes\.(ch\d\d_\w+) import", source, re.M):
        out |= recipe_chapters(module)
    return out - {number(chapter)}


def test_every_chapter_is_in_exactly_one_lane():
    chapters = sorted(p.name for p in (ROOT / "chapters").iterdir() if re.fullmatch(r"\d\d_\w+", p.name))
    declared = sorted(c for lane in lanes().values() for c, _ in lane)
    assert len(lanes()) == 2
    assert declared == chapters


def test_each_chapter_runs_after_the_chapters_whose_models_it_loads():
    all_lanes = lanes()
    lane_of = {c: (name, i) for name, lane in all_lanes.items() for i, (c, _) in enumerate(lane)}
    by_number = {number(c): c for c in lane_of}

    def finished_before(chapter: str) -> set[int]:
        """Chapters certainly finished when ``chapter`` starts."""
        name, i = lane_of[chapter]
        done = set()
        for c, wait in all_lanes[name][:i + 1]:
            if wait is not None:
                assert wait in lane_of, f"{c} waits for {wait}, which is in no lane"
                done |= finished_before(wait) | {number(wait)}
            if c != chapter:
                done.add(number(c))
        return done

    for chapter in lane_of:
        missing = needs(chapter) - finished_before(chapter)
        assert not missing, (f"{chapter} loads models of chapter(s) {sorted(missing)} "
                             f"({', '.join(by_number[k] for k in sorted(missing))}), which may not have finished "
                             f"when it starts: move it after them in its lane or make it wait (CHAPTER:WAITS_FOR)")


def test_the_dependency_reader_sees_the_known_dependencies():
    # a reader that found nothing would let every lane order pass
    assert needs("04_ddim") == {3}
    assert {2, 3} <= needs("06_latent_diffusion")
    assert {2, 5} <= needs("07_dit")
    assert {2, 6} <= needs("09_lcm")
    assert needs("01_swiss_roll") == set()
