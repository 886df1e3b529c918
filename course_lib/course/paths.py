"""Where the course keeps what it computes once: ``$COURSE_CACHE``, else ~/.cache/course_lib; and
``set_aside``, which keeps an earlier run's file under a new name instead of deleting or overwriting it.
On Colab, point ``COURSE_CACHE`` at a mounted Google Drive folder and checkpoints, artifacts, the CIFAR-10
download and FID statistics outlive the runtime (book/students.md).
"""

from __future__ import annotations
import itertools
import os
import re
import time
from pathlib import Path


CACHE_ENV = "COURSE_CACHE"


def expand_path(value: str | os.PathLike, what: str) -> Path:
    """``value`` with ``~`` and ``$VAR`` / ``${VAR}`` expanded, as a shell would; ``what`` (e.g. "COURSE_CACHE")
    names where it came from in the error raised when a variable is not set or ``~user`` is unknown."""
    text = str(value)
    expanded = os.path.expanduser(os.path.expandvars(text))
    unset = re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", expanded)
    if unset or expanded.startswith("~"):
        reason = f"these variables are not set: {', '.join(unset)}" if unset else "its ~user is unknown"
        raise ValueError(f"{what}={text!r} cannot be expanded: {reason}; set them, or give a full path "
                         f"(e.g. {what}=/home/me/...)")
    return Path(expanded)


def cache_dir() -> Path:
    """Where decoded data, FID statistics and artifacts are cached: ``$COURSE_CACHE`` (``~`` and ``$VAR``
    expanded) or ~/.cache/course_lib."""
    value = os.environ.get(CACHE_ENV)
    return expand_path(value, CACHE_ENV) if value else Path.home() / ".cache" / "course_lib"


def in_cache(path: str | os.PathLike) -> str:
    """``path`` as a page may print it: relative to the cache folder ("checkpoints/x.pt in the course cache"),
    else its name alone (never a machine's absolute path)."""
    path = Path(path)
    try:
        return f"{path.resolve().relative_to(cache_dir().resolve()).as_posix()} in the course cache"
    except ValueError:
        return path.name


def set_aside(*paths: str | os.PathLike, what: str = "an earlier run's file") -> list[Path]:
    """Keeps the files among ``paths`` that exist (e.g. a checkpoint, or an artifact's .pt and .json) by
    renaming each to NAME.<YYYYMMDD-HHMMSS>.SUFFIX beside it, one timestamp for all of them (``-2``, ``-3``,
    ... appended while any of those names is taken: nothing is ever overwritten), and says so. Returns the
    new paths ([] when none existed). Never deletes: what to delete is the student's decision."""
    existing = [Path(p) for p in paths if Path(p).exists()]
    if not existing:
        return []
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in itertools.count(1):
        tag = stamp if n == 1 else f"{stamp}-{n}"
        targets = [p.with_name(f"{p.stem}.{tag}{p.suffix}") for p in existing]
        if not any(t.exists() for t in targets):
            break
    for source, target in zip(existing, targets):
        source.rename(target)
        print(f"kept {what}: {in_cache(source)} moved aside to {target.name} (delete it yourself once you "
              f"no longer need it)")
    return targets
