"""Estimates each chapter's laptop profile on a 2-core CPU from counted work (course_lib.book.laptop_cost):
the chapter's P laptop values and the laptop recipes, the models the profile publishes loaded, not trained.

    python scripts/estimate_laptop.py            every chapter, with its four largest items
    python scripts/estimate_laptop.py 5          one chapter, every item
    python scripts/estimate_laptop.py --training the CPU-hours of the models the profile publishes (trained once)
    python scripts/estimate_laptop.py --write    also write the estimates into book/intro.md's time table (its
                                                 laptop column; rows that say "measured" are kept)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from course_lib.book import laptop_cost

INTRO = Path(__file__).resolve().parents[1] / "book" / "intro.md"
COLUMN = "`laptop` profile"  # the time table's header cell that names the laptop column


def intro_with(minutes: dict[int, float], text: str) -> str:
    """book/intro.md's ``text`` with each chapter row's laptop cell set to its estimate, in the table whose
    header names the laptop column; a cell that says "measured" (a stored laptop run) is kept."""
    lines = text.splitlines(keepends=True)
    column = None
    for i, line in enumerate(lines):
        if not line.startswith("|"):
            column = None
            continue
        cells = line.split("|")
        if any(COLUMN in c for c in cells):
            column = next(k for k, c in enumerate(cells) if COLUMN in c)
            continue
        if column is None or not cells[1].strip().isdigit() or len(cells) <= column:
            continue
        ch = int(cells[1])
        if ch in minutes and "measured" not in cells[column]:
            over = " (over the 30: to be resized)" if minutes[ch] > laptop_cost.BUDGET_MINUTES else ""
            cells[column] = (f" ≈ {minutes[ch]:.0f} min, estimated{over}; not run yet: waits for its "
                             "published models ")
            lines[i] = "|".join(cells)
    return "".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*", type=int, help="chapter numbers (default: all)")
    parser.add_argument("--write", action="store_true", help="write the estimates into book/intro.md")
    parser.add_argument("--training", action="store_true",
                        help="list the published models' training work instead (estimated CPU-hours)")
    args = parser.parse_args(argv)
    chapters = args.chapters or list(range(1, 10))
    if args.training:
        total = 0.0
        for ch in chapters:
            for item in laptop_cost.laptop_plan(ch):
                if item.published:
                    hours = laptop_cost.cpu_seconds(item) / 3600
                    total += hours
                    print(f"chapter {ch}: {hours:6.1f} h  {item.label}")
        print(f"in all: {total:.1f} CPU-hours (estimated)")
        return 0
    print(f"2-core CPU rates: training {laptop_cost.CPU_TRAIN_FLOPS / 1e9:g} GFLOP/s, forward passes "
          f"{laptop_cost.CPU_INFER_FLOPS / 1e9:g} GFLOP/s, Inception {laptop_cost.INCEPTION_S:g} s per image, "
          f"{laptop_cost.OP_S * 1e6:g} us per op; budget {laptop_cost.BUDGET_MINUTES} min")
    over = 0
    for ch in chapters:
        items = laptop_cost.laptop_plan(ch)
        minutes = laptop_cost.estimate_laptop_minutes(ch)
        over += minutes > laptop_cost.BUDGET_MINUTES
        flag = " OVER BUDGET" if minutes > laptop_cost.BUDGET_MINUTES else ""
        print(f"\nchapter {ch}: {minutes:.1f} min (estimate){flag}")
        shown = sorted(items, key=lambda i: (laptop_cost.loaded(i), -laptop_cost.cpu_seconds(i)))
        for item in shown if args.chapters else [i for i in shown if not laptop_cost.loaded(i)][:4]:
            note = "  (loaded: published)" if laptop_cost.loaded(item) else ""
            print(f"  {laptop_cost.cpu_seconds(item) / 60:8.1f} min  {item.label}{note}")
    if args.write:
        all_minutes = {ch: laptop_cost.estimate_laptop_minutes(ch) for ch in range(1, 10)}
        INTRO.write_text(intro_with(all_minutes, INTRO.read_text()))
        print(f"\nwrote the laptop column of {INTRO.relative_to(INTRO.parents[1])}")
    return 1 if over and args.chapters else 0


if __name__ == "__main__":
    sys.exit(main())
