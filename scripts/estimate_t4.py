"""Estimates each chapter's colab profile on a Colab T4 from counted work (course_lib.book.t4_cost) and writes
course_lib/course/t4_minutes.json, which show_setup reads, and the Colab T4 column of book/intro.md's time
table; entries of kind "measured" are kept as they are.

    python scripts/estimate_t4.py            print the table, write the JSON and the intro's column
    python scripts/estimate_t4.py --check    print it; exit 1 if the JSON or the intro differs from the model
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from course_lib.book import t4_cost
from course_lib.book.t4_plans import RESIZES

INTRO = Path(__file__).resolve().parents[1] / "book" / "intro.md"


def intro_with(table: dict[str, dict], text: str) -> str:
    """book/intro.md's ``text`` with each chapter row's cell in the "Colab T4" column from ``table``: only in
    the table whose header names that column (the intro's other tables are left alone)."""
    lines = text.splitlines(keepends=True)
    column = None  # the Colab T4 column's index in the current table, None outside it
    for i, line in enumerate(lines):
        if not line.startswith("|"):
            column = None
            continue
        cells = line.split("|")
        headers = [c.strip() for c in cells]
        if any(h.startswith("Colab T4") for h in headers):
            column = next(k for k, h in enumerate(headers) if h.startswith("Colab T4"))
            continue
        key = f"{int(cells[1]):02d}" if column is not None and cells[1].strip().isdigit() else None
        if key in table and len(cells) > column:
            entry = table[key]
            label = (f"≈ {entry['minutes']:.0f} min, estimated" if entry["kind"] == "estimate"
                     else f"{entry['minutes']:.0f} min, measured")
            cells[column] = f" {label} "
            lines[i] = "|".join(cells)
    return "".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the stored JSON and book/intro.md, write nothing")
    args = parser.parse_args(argv)
    stored = t4_cost.read_json()
    table = t4_cost.estimates_json(stored)
    print(f"T4 rates: training {t4_cost.TRAIN_AMP_FLOPS / 1e12:g} TFLOP/s (fp16 autocast), sampling "
          f"{t4_cost.INFER_FP32_FLOPS / 1e12:g} (fp32) or {t4_cost.INFER_AMP_FLOPS / 1e12:g} (autocast), "
          f"{t4_cost.LAUNCH_S * 1e6:g} us per op launched; budget {t4_cost.BUDGET_MINUTES} min")
    for key, entry in table.items():
        ch = int(key)
        items = t4_cost.chapter_plan(ch)
        over = " OVER BUDGET" if entry["minutes"] > t4_cost.BUDGET_MINUTES else ""
        print(f"\nchapter {ch}: {entry['minutes']:.1f} min ({entry['kind']}){over}")
        for item in sorted(items, key=lambda i: (not i.counted, -i.seconds_total()))[:4]:
            note = "" if item.counted else "  (loaded, not counted)"
            print(f"    {item.seconds_total() / 60:6.1f} min  {item.label}{note}")
        if ch in RESIZES:
            what, changes = RESIZES[ch]
            print(f"    resize: {what}\n    -> {t4_cost.estimate_t4_minutes(ch, **changes):.1f} min")
    intro = intro_with(table, INTRO.read_text())
    if args.check:
        stale = [str(p) for p, fresh in ((t4_cost.JSON_PATH, table == stored), (INTRO, intro == INTRO.read_text()))
                 if not fresh]
        if stale:
            print(f"\n{' and '.join(stale)} stale: run python scripts/estimate_t4.py", file=sys.stderr)
            return 1
        return 0
    t4_cost.JSON_PATH.write_text(json.dumps(table, indent=2) + "\n")
    INTRO.write_text(intro)
    print(f"\nwrote {t4_cost.JSON_PATH} and the Colab T4 column of {INTRO}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
