"""Colab links: the course's release ref, the install cell, and the badges and URLs that open a chapter's
lecture or student notebook in Colab.
"""

from __future__ import annotations

from pathlib import Path

# The first code cell of every chapter. It runs before course_lib is installed, so it cannot live
# in course_lib as a function; off Colab it does nothing. The ref is the release tag of
# pyproject.toml's version (tests check both, and the repository URL of book/_config.yml).
COURSE_REF = "v0.1.0"


COLAB_CELL = (
    "import os\n"
    "import sys\n"
    "\n"
    'if "google.colab" in sys.modules:  # on Colab: install course_lib, size the chapter for a T4 GPU\n'
    f'    %pip install -q "course-lib[colab] @ git+https://github.com/diffusion-from-scratch/course@{COURSE_REF}"\n'
    '    os.environ.setdefault("COURSE_PROFILE", "colab")  # GPU runtime: Runtime > Change runtime type > T4 GPU'
)


def _book_config(root: Path) -> dict:
    import yaml

    return yaml.safe_load((Path(root) / "book/_config.yml").read_text())


def colab_url(path: str | Path, root: Path) -> str:
    """Open-in-Colab URL of repository file ``path``, from book/_config.yml's repository and Colab settings."""
    config = _book_config(root)
    repo = config["repository"]["url"].rstrip("/").removeprefix("https://github.com/")
    colab = config.get("launch_buttons", {}).get("colab_url", "https://colab.research.google.com").rstrip("/")
    prefix = (config["repository"].get("path_to_book") or "").strip("/")
    full = "/".join(p for p in (prefix, Path(path).as_posix()) if p)
    return f"{colab}/github/{repo}/blob/{config['repository'].get('branch', 'main')}/{full}"


def colab_admonition(lecture: str | Path, root: Path) -> str:
    """A MyST admonition linking a chapter's lecture and student notebooks on Colab, for its first cell."""
    return (f"```{{admonition}} Run this chapter on Colab\n:class: tip\n\n"
            f"Open the [lecture notebook]({colab_url(lecture, root)}) (with solutions) or the "
            f"[student notebook]({colab_url(student_path(lecture), root)}) (exercises to fill in). "
            f"Choose a GPU runtime; the first cell installs `course_lib`.\n```")


def student_path(lecture: str | Path) -> Path:
    lecture = Path(lecture)
    return lecture.with_name(f"{lecture.stem}_student.ipynb")
