"""Execute chapter notebooks in a profile and store their outputs (the .ipynb beside each .py).

    python book/execute_chapters.py --profile smoke                 # every chapter
    python book/execute_chapters.py --profile smoke chapters/01_swiss_roll/01_swiss_roll.py
"""

import argparse
import sys
from pathlib import Path

from course_lib.notebooks import execute

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", required=True, help="smoke, colab or full")
    parser.add_argument("chapters", nargs="*", type=Path, help="py:percent chapter files (default: all)")
    args = parser.parse_args()
    chapters = args.chapters or sorted(ROOT.glob("chapters/[0-9][0-9]_*/[0-9][0-9]_*.py"))
    for py in chapters:
        print(f"executing {py} in profile {args.profile} ...", flush=True)
        out = execute(py, args.profile)
        print(f"  wrote {out}", flush=True)
    sys.exit(0)
