"""Estimates each chapter's colab profile on a Colab T4 from counted work (course_lib.book.t4_cost) and writes
course_lib/course/t4_minutes.json, which show_setup reads; entries of kind "measured" are kept as they are.

    python scripts/estimate_t4.py            print the table and write the JSON
    python scripts/estimate_t4.py --check    print it; exit 1 if the JSON differs from the model's numbers
"""

from __future__ import annotations

import argparse
import json
import sys

from course_lib.book import t4_cost
from course_lib.book.t4_plans import RESIZES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the stored JSON, write nothing")
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
    if args.check:
        if table != stored:
            print(f"\n{t4_cost.JSON_PATH} is stale: run python scripts/estimate_t4.py", file=sys.stderr)
            return 1
        return 0
    t4_cost.JSON_PATH.write_text(json.dumps(table, indent=2) + "\n")
    print(f"\nwrote {t4_cost.JSON_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
