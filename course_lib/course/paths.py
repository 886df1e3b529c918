"""Where the course keeps what it computes once: ``$COURSE_CACHE``, else ~/.cache/course_lib.
"""

from __future__ import annotations
import os
import re
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
