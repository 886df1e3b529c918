"""Where the course keeps what it computes once: ``$COURSE_CACHE``, else ~/.cache/course_lib.
"""

from __future__ import annotations
import os
from pathlib import Path


CACHE_ENV = "COURSE_CACHE"


def cache_dir() -> Path:
    """Where decoded data, FID statistics and artifacts are cached: ``$COURSE_CACHE`` or ~/.cache/course_lib."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "course_lib")
