#!/usr/bin/env python3
"""Execute chapter notebooks in a profile, record their results, and rewrite the Results page.

    python scripts/run_chapters.py --profile smoke                  every chapter, in book/_toc.yml order
    python scripts/run_chapters.py --profile full chapters/03_ddpm/03_ddpm.py
    python scripts/run_chapters.py --collect-only                   re-read every stored .ipynb, execute nothing
    python scripts/run_chapters.py --collect-only chapters/02_vae/02_vae.ipynb

Each chapter runs top to bottom in a fresh kernel under COURSE_PROFILE (course_lib.book.notebooks.execute:
no timing metadata in cells; outputs, widget state and provenance written back to the .ipynb).
Then, per chapter: profile, device and hardware, wall time, the kernel's peak memory, the metrics
the chapter reported (course_lib.book.results.report; "no metrics reported yet" when none) and the
command that reproduces it go into results/results.json, one entry per chapter and profile
(entries of other chapters and profiles are kept), and book/results.md is regenerated
(scripts/make_results_page.py). A chapter that fails is reported and the others still run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from course_lib.book.notebooks import chapter_results, execute, toc_chapters  # noqa: E402
from course_lib.course.profiles import PROFILES  # noqa: E402

RESULTS = Path("results/results.json")
ABOUT = ("Headline results of the chapter notebooks, one entry per chapter and profile. Written by "
         "scripts/run_chapters.py (do not edit by hand); book/results.md is generated from it.")


def reproduce_command(py: Path, profile: str) -> str:
    return f"python scripts/run_chapters.py --profile {profile} {py.as_posix()}"


def load_results(path: Path) -> dict:
    if not path.exists():
        return {"about": ABOUT, "entries": []}
    data = json.loads(path.read_text(encoding="utf-8"))
    data.setdefault("entries", [])
    return data


def _order(entries: list[dict], root: Path) -> list[dict]:
    toc = [p.parent.name for p in toc_chapters(root)]
    profiles = list(PROFILES)

    def key(e):
        in_toc = e["chapter"] in toc
        return (0 if in_toc else 1, toc.index(e["chapter"]) if in_toc else 0, e["chapter"],
                profiles.index(e["profile"]) if e["profile"] in profiles else len(profiles), e["profile"])
    return sorted(entries, key=key)


def merge(results: dict, entry: dict, root: Path = ROOT) -> dict:
    """``results`` with ``entry`` replacing any entry of the same chapter and profile, in toc order."""
    kept = [e for e in results["entries"] if (e["chapter"], e["profile"]) != (entry["chapter"], entry["profile"])]
    return {"about": ABOUT, "entries": _order(kept + [entry], root)}


def write_results(results: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # replaced at once: readers never see half a file
    tmp.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def collect(py: Path, root: Path = ROOT) -> dict:
    """The results.json entry of chapter ``py`` (relative to ``root``) from its stored .ipynb."""
    entry = chapter_results(root / py.with_suffix(".ipynb"), root)
    entry["command"] = reproduce_command(py, entry["profile"])
    return entry


def _relative(path: Path) -> Path:
    p = path.resolve()
    p = p.with_suffix(".py") if p.suffix == ".ipynb" else p
    return p.relative_to(ROOT)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chapters", nargs="*", type=Path,
                        help="chapter .py (or .ipynb) files; default: all in book/_toc.yml")
    parser.add_argument("--profile", choices=sorted(PROFILES),
                        help="execute in this profile (required unless --collect-only)")
    parser.add_argument("--collect-only", action="store_true", help="execute nothing: re-read the stored .ipynb files")
    parser.add_argument("--results", type=Path, default=ROOT / RESULTS, help=f"default: {RESULTS}")
    parser.add_argument("--no-page", action="store_true", help="leave book/results.md alone")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell (default 1800)")
    args = parser.parse_args(argv)
    if not args.collect_only and not args.profile:
        parser.error("give --profile smoke|colab|full, or --collect-only")
    if args.collect_only and args.profile:
        parser.error("--collect-only reads the profile each notebook was executed in; leave out --profile")
    chapters = [_relative(p) for p in args.chapters] or toc_chapters(ROOT)
    failed = []
    for py in chapters:
        try:
            if not args.collect_only:
                print(f"executing {py} in profile {args.profile} ...", flush=True)
                print(f"  wrote {execute(ROOT / py, args.profile, timeout=args.timeout).relative_to(ROOT)}", flush=True)
            elif not (ROOT / py).with_suffix(".ipynb").exists():
                print(f"skipping {py}: no executed .ipynb beside it", flush=True)
                continue
            entry = collect(py)
        except Exception:  # noqa: BLE001: report it, go on with the other chapters
            traceback.print_exc()
            failed.append(py)
            continue
        # Re-read just before writing: another run may have recorded other chapters meanwhile.
        results = merge(load_results(args.results), entry)
        write_results(results, args.results)  # after each chapter: a long run keeps what finished
        metrics = ", ".join(entry["metrics"]) or "no metrics reported yet"
        print(f"  {entry['chapter']} ({entry['profile']}, {entry['wall_seconds']} s): {metrics}", flush=True)
    results = load_results(args.results)
    print(f"{args.results}: {len(results['entries'])} entries")
    if not args.no_page:
        from make_results_page import write_page

        print(f"wrote {write_page(results, ROOT).relative_to(ROOT)}")
    if failed:
        print("FAILED: " + ", ".join(map(str, failed)), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
