#!/usr/bin/env python3
"""Writes the student version of every chapter notebook, and book/students.md (Colab links).

    python scripts/make_student_notebooks.py                     every chapter
    python scripts/make_student_notebooks.py chapters/03_ddpm/03_ddpm.ipynb   only these (and the page)
    python scripts/make_student_notebooks.py --check             exit 1 if a committed copy is stale
    python scripts/make_student_notebooks.py --out DIR           write under DIR instead of the repository
    python scripts/make_student_notebooks.py --snippet chapters/02_vae/02_vae.ipynb
                                                                 print the chapter's Colab-links box

chapters/NN_name/NN_name.ipynb -> chapters/NN_name/NN_name_student.ipynb; what changes is described
in course_lib/book/student.py. The output depends only on the lecture notebooks (no timestamps).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course_lib.book.colab import colab_admonition
from course_lib.book.student import generate  # noqa: E402


def _relative(path: str) -> Path:
    p = Path(path).resolve()
    if p.suffix == ".py":
        p = p.with_suffix(".ipynb")
    return p.relative_to(ROOT)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="*", help="lecture notebooks (default: every chapter)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file would change")
    parser.add_argument("--out", type=Path, help="write under this folder instead of the repository")
    parser.add_argument("--snippet", metavar="NOTEBOOK", help="print this chapter's Colab-links admonition")
    args = parser.parse_args(argv)
    if args.snippet:
        print(colab_admonition(_relative(args.snippet), ROOT))
        return 0
    files = generate(ROOT, [_relative(p) for p in args.notebooks] if args.notebooks else None)
    stale = []
    for rel, text in files.items():
        target = (args.out or ROOT) / rel
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current == text:
            continue
        stale.append(rel)
        if not args.check:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
    verb = "stale" if args.check else "written"
    print(f"{len(files) - len(stale)} up to date, {len(stale)} {verb}" + "".join(f"\n  {p}" for p in stale))
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
