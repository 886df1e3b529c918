"""Execute chapter notebooks in a profile and store their outputs (the .ipynb beside each .py).

    python book/execute_chapters.py --profile smoke                 # every chapter
    python book/execute_chapters.py --profile smoke chapters/01_swiss_roll/01_swiss_roll.py

The same command as scripts/run_chapters.py (which see): it also records each chapter's results
in results/results.json and regenerates the book's Results page (book/results.md).
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from run_chapters import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
